"""GridFlex shared protocol core: config, chain access, artifacts and the `gridflex` CLI."""
