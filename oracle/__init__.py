"""Oracle service: reading ingest, measurement, report signing, quorum, chain posting."""
