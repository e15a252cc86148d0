"""Measurement on several processes: each rank's compiled DDP training step (`worker.py`)."""
