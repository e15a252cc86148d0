"""What each stage torch's CompilerBisector can name means, in a user's words.

The names are torch's (`torch._inductor.compiler_bisector.BACKENDS`: its backends in the order it
tries them, and each backend's subsystems); the sentences are this project's reading of them.
The `numerical-divergence` rule explains a recorded bisection with them (`stage_sentence`), and
its documentation lists them (`STAGES_DOC`), so `explain` and docs/rules.md say the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probes.records.divergence import BISECT_MAX_VAR

BACKEND_MEANINGS = {
    "eager": (
        "the graph dynamo traced already differs: code that behaves differently while "
        "compiling (`torch.compiler.is_compiling()`, a Python value read once at trace time), "
        "before any compiler runs"
    ),
    "aot_eager": (
        "AOTAutograd's tracing changes the result (functionalization, the joint forward and "
        "backward graph, a custom autograd.Function's backward traced), before any "
        "decomposition or generated code"
    ),
    "aot_eager_decomp_partition": (
        "a decomposition of an aten operator, or the forward/backward partitioner, changes the "
        "result, before Inductor generates code"
    ),
    "aot_eager_decomp_partition_crossref": (
        "an operator's fake-tensor (meta) function disagrees with its kernel"
    ),
    "inductor": (
        "Inductor's generated code, in a part the bisector cannot switch off: fusion and code "
        "generation, or the lowering of a custom operator (its lowerings subsystem leaves "
        "custom operators on)"
    ),
}

SUBSYSTEM_MEANINGS = {
    "decomposition": "a decomposition of an aten operator",
    "aot_eager_decomp_partition_cse": "common-subexpression elimination in AOTAutograd's graph",
    "pre_grad_graph": "the pre-grad graph Inductor receives",
    "pre_grad_passes": "Inductor's pre-grad FX passes (pattern rewrites before AOTAutograd)",
    "joint_graph_passes": "Inductor's joint-graph passes (rewrites of the forward+backward graph)",
    "post_grad_passes": "Inductor's post-grad passes",
    "inductor_fallback_random": (
        "Inductor's own random numbers (`fallback_random = True` draws eager's instead)"
    ),
    "inductor_emulate_precision_casts": (
        "the low-precision roundings Inductor skips inside fused kernels "
        "(`emulate_precision_casts = True` rounds as eager does)"
    ),
    "inductor_layout_optimization": "Inductor's layout optimisation (channels-last convolutions)",
    "inductor_comprehensive_padding": "Inductor's padding of strides",
    "cudagraphs": "the CUDA-graph wrapping of the compiled graphs",
    "lowerings": "Inductor's lowering of an aten operator to its IR",
}

NOTHING_FOUND = (
    "no backend fails the criterion under bisection: the divergence needs more of the model "
    "compiled than was bisected, or does not repeat from one compile to the next"
)

STAGES_DOC = (
    "Stages the bisection can name (torch's CompilerBisector tries the backends in this "
    "order, then the subsystems of the first that fails): "
    + "; ".join(f"`{name}`: {meaning}" for name, meaning in BACKEND_MEANINGS.items())
    + ". Subsystems: "
    + "; ".join(f"`{name}`: {meaning}" for name, meaning in SUBSYSTEM_MEANINGS.items())
    + "."
)


def stage_sentence(bisection: Mapping[str, Any]) -> str:
    """What the stage a recorded bisection names is: one clause, no final stop."""
    backend, subsystem = bisection.get("backend"), bisection.get("subsystem")
    if not backend:
        return NOTHING_FOUND
    change = bisection.get("config_change")
    if isinstance(change, Mapping):
        meaning = SUBSYSTEM_MEANINGS.get(str(subsystem), f"the subsystem `{subsystem}`")
        return (
            f"{meaning}: setting `{change.get('config')}.{change.get('field')} = "
            f"{change.get('value')}` removes it ({backend})"
        )
    if subsystem is None:
        return f"backend `{backend}`: {BACKEND_MEANINGS.get(str(backend), 'a stage of torch')}"
    number, debug = bisection.get("bisect_number"), bisection.get("debug_info")
    if subsystem == "lowerings" and debug:
        return f"Inductor's lowering of `{debug}` (lowering number {number})"
    meaning = SUBSYSTEM_MEANINGS.get(str(subsystem), f"the subsystem `{subsystem}`")
    where = f", application {number}" if number is not None else ""
    return f"{meaning} ({backend}{where}{f': `{debug}`' if debug else ''})"


def reproduce_command(bisection: Mapping[str, Any]) -> str | None:
    """The by-hand run that applies the stage found, with the run that would pass beside it."""
    env = bisection.get("reproduce_env") or {}
    change = bisection.get("config_change")
    if isinstance(change, Mapping):
        module = (
            "torch._inductor.config"
            if change.get("config") == "inductor"
            else ("torch._functorch.config")
        )
        return (
            f"import {module}\n{module}.{change.get('field')} = {change.get('value')}  "
            "# before compiling: the bisection found this removes the divergence"
        )
    if not env:
        return None
    assignments = " ".join(f"{key}={value}" for key, value in env.items())
    line = f"{assignments} python your_script.py"
    number = bisection.get("bisect_number")
    if BISECT_MAX_VAR in env and isinstance(number, int):
        return f"{line}  # diverges; {BISECT_MAX_VAR}={number - 1} does not"
    return f"{line}  # every compile uses this backend: it diverges"
