"""Device-owner node: keystore, device adapters, attestation signer, outbox, dispatch."""
