"""probes/targets/lerobot."""
