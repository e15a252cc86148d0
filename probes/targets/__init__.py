"""probes/targets."""
