"""probes/compile."""
