"""probes/kernels."""
