"""Names the record uses as keys, defined once for the probes that write them and the rules and
renderers that read them: the probes of a diagnosis and the entry points they call."""

from __future__ import annotations

# Entry points: the calls a diagnosis times and compares.
INFERENCE = "inference"
TRAINING = "training"
ENTRY_POINTS = (INFERENCE, TRAINING)

# The two sides every figure compares: the eager module and its compiled twin.
EAGER = "eager"
COMPILED = "compiled"
SIDES = (EAGER, COMPILED)

# The seed of weights, batches and per-step draws, as the reference script's.
DEFAULT_SEED = 42

# The floating-point dtypes a target can run in (`--dtype`), by torch's names.
DEFAULT_DTYPE = "float32"
BFLOAT16, FLOAT16 = "bfloat16", "float16"
LOW_PRECISION_DTYPES = (BFLOAT16, FLOAT16)
DTYPES = (DEFAULT_DTYPE, *LOW_PRECISION_DTYPES)

# Probe names as `diagnosis.json` records them under "probes", in the order a run takes them.
GRAPH_BREAKS = "graph_breaks"
BENCHMARK = "benchmark"
DIVERGENCE = "divergence"
KERNELS = "kernels"
RECOMPILES = "recompiles"
COMPILE_TRACE = "compile_trace"
# The what-ifs for speed: more compiles of the model, each timed against the benchmark's copies.
SPEED_WHAT_IFS = "what_ifs"
# Compile time: the benchmark's compiles by stage (recorded with it), and the levers on it.
COMPILE_TIME = "compile_time"
PROBES = (
    GRAPH_BREAKS,
    BENCHMARK,
    DIVERGENCE,
    KERNELS,
    SPEED_WHAT_IFS,
    COMPILE_TIME,
    RECOMPILES,
    COMPILE_TRACE,
)
# Probes that measure on the benchmark's compiled copies: selecting one runs the benchmark too.
# (The recompile scenarios compile a copy of their own.)
NEEDS_BENCHMARK = (KERNELS, DIVERGENCE, SPEED_WHAT_IFS, COMPILE_TIME)
# Recorded by the kernel probe's step beside its own section: the time attribution per entry
# point, read from the same profiled runs (`probes/records/speed.py`).
SPEED = "speed"
