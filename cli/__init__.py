"""The `gridflex` command line: the only place that wires components together."""
