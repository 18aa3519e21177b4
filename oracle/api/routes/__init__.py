"""Routes of the oracle API, one module per concern."""
