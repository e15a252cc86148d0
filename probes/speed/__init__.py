"""probes/speed: why a compiled call is or is not faster, and what would make it faster.

`attribution.py` splits each entry point's eager and compiled call into the time categories of
`probes/records/speed.py`, from the kernel probe's profiler traces; `backends.py` gives a what-if
a compile of its own.
"""
