"""Chain access: compiler, local anvil, deployments and a signing client."""
