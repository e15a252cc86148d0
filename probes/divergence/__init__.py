"""probes/divergence."""
