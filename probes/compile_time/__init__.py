"""probes/compile_time: the levers on compile time, each tried as one more compile.

`levers.py` chooses which to try from the benchmark's compile figures and runs them;
`fresh_process.py` compiles the target again in a new interpreter (warm cache, portable cache);
`regional.py` finds the model's repeated blocks and compiles them alone. Where a compile's
seconds go is measured with the compile itself, in `probes/compile/breakdown.py`.
"""
