"""probes/speed: why a compiled call is or is not faster, and what would make it faster.

`attribution.py` splits each entry point's eager and compiled call into the time categories of
`probes/records/speed.py`, from the kernel probe's profiler traces; `plan.py` chooses the what-ifs
for speed from those figures; `what_ifs.py` compiles, times and checks each one against fp64;
`backends.py` gives a what-if a compile of its own; `cudagraph_skips.py` counts the CUDA-graph
skips of the reduce-overhead what-if.
"""
