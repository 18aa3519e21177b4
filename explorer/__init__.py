"""Settlement explorer: chain-event indexer, web pages and charts, re-verification."""
