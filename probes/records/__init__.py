"""probes/records."""
