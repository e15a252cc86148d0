"""The divergence probe's record: what it measured, under which names, by which criterion.

`probes.divergence.probe.probe_divergence` fills a `DivergenceReport`; `diagnosis.json` keeps it
as JSON under `probes["divergence"]`, and the rules (`analyzer.rules.divergence`) and renderers
read it from there. The recorded section::

    {"target", "device", "torch_version", "compile", "seed",
     "dtype": "float32" | "bfloat16" | "float16",
     "criterion": {"tolerance", "multiplier_large", "multiplier_small", "small_below",
                   "error_measure", "source", "low_precision", "cosine", "cosine_threshold"},
     "criterion_rule": str,
     "numerics": NumericSettings | None,
     "verdict": "none" | "rng" | "arithmetic" | "both" | "untested" | "unknown",     (*)
     "summary": str,                                                                  (*)
     "scenarios": [                     # "eval", "as-is", "fallback-random", "dropout-off",
        {"name", "entry_point",         # and on CUDA "tf32-off", "tf32-on"
         "description", "settings", "compiled_fresh", "frames_compiled",
         "passes": bool | None, "failing": [str], "primary": "loss" | "action",
         "primary_max_abs_diff", "max_rel_diff", "gradients_compared", "gradients_failing",
         "max_gradient_abs_diff", "numerics", "seconds", "error",
         "outputs": [{"name", "shape", "max_abs_diff", "max_rel_diff", "rmse_diff",
                      "eager_rerun_max_abs_diff", "eager_rmse_vs_fp64",
                      "compiled_rmse_vs_fp64", "multiplier", "error_ratio", "bound",
                      "within_allclose", "passes", "eager_value", "cosine_similarity"}]}],
     "attribution": {"verdict", "explanation",                                        (*)
                     "loss_diff": {scenario: float},
                     "max_gradient_diff": {scenario: float}, "passes": {scenario: bool}}
                    | None,
     "dropout": {"modules": [path], "attention": [path], "functional": [name]},
     "localization": {"entry_point", "reason", "settings", "capture_note",
                      "capture_reproduces", "capture_outputs": [output],
                      "modules": [{"order", "path", "module_class", "call_index", "shape",
                                   "max_abs_error", "max_rel_error", "rmse", "input_rmse",
                                   "error_growth", "eager_rmse_vs_fp64",
                                   "compiled_rmse_vs_fp64", "error_ratio", "passes",
                                   "inputs_pass", "adds_error"}],
                      "gradients": [{"order", "parameter", "module_path", "shape",
                                     "max_abs_error", "max_rel_error", "rmse",
                                     "eager_rmse_vs_fp64", "compiled_rmse_vs_fp64",
                                     "error_ratio", "passes"}],
                      "first_divergent_module", "first_divergent_class",
                      "first_divergent_gradient", "backward_only",
                      "confirmation": {"module_path", "frames_compiled", "reproduced",
                                       "outputs": [output], "seconds", "error"} | None,
                      "seconds"} | None,
     "localization_note": str,
     "bisection": {"entry_point", "module_path" ("" = the whole model), "reason", "backends",
                   "backend", "subsystem", "bisect_number", "debug_info",
                   "config_change": {"config", "field", "value"} | None,
                   "reproduce_env": {var: value},
                   "steps": [{"backend", "subsystem", "state", "passes", "frames_compiled",
                              "seconds", "error"}],
                   "compiles", "reused_answers", "seconds", "error"} | None,
     "bisection_note": str,
     "precision": {"ran", "note", "tf32_explains" (*)} | None,
     "dynamo_resets", "notes", "phase_seconds": {phase: seconds}}

(*) The probe measures and never judges: the keys marked are the analyzer's reading of the
measurements, written in by `analyzer.rules.divergence_reading.complete_divergence_record`
when the section is recorded. Differences are absolute, in the unit of the output compared;
`max_rel_diff` is relative to the output's largest magnitude; `error_ratio` is compiled's RMSE
against fp64 over eager's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from probes.records.environment import NumericSettings
from probes.records.names import DEFAULT_DTYPE, INFERENCE, LOW_PRECISION_DTYPES, TRAINING

# --- scenarios: one comparison each, under one setting ---------------------------------------

EVAL = "eval"
AS_IS = "as-is"
FALLBACK_RANDOM = "fallback-random"
DROPOUT_OFF = "dropout-off"
TF32_OFF = "tf32-off"
TF32_ON = "tf32-on"
# The training what-ifs that take random numbers out, in the order they run.
RNG_FREE = (FALLBACK_RANDOM, DROPOUT_OFF)

SCENARIO_DESCRIPTIONS = {
    EVAL: "inference in eval mode, compiled copy as is",
    AS_IS: "training forward + backward, same seed both sides, compiled copy as is",
    FALLBACK_RANDOM: "as-is with torch._inductor.config.fallback_random = True",
    DROPOUT_OFF: "as-is with every dropout off (modules, attention, functional)",
    TF32_OFF: "random numbers out, TF32 off for matmul and cuDNN on both sides",
    TF32_ON: "random numbers out, TF32 on for matmul and cuDNN on both sides",
}

# --- verdicts: what a difference comes from (the rules' reading, recorded beside the figures) --

NONE = "none"  # compiled is as close to fp64 as eager
RNG = "rng"  # random numbers: the difference vanishes when both sides draw the same
ARITHMETIC = "arithmetic"  # compiled arithmetic differs beyond the fp64 criterion
BOTH = "both"  # random numbers explain most of it; the arithmetic differs too
UNTESTED = "untested"  # training differs, and no what-if ran to tell the causes apart
UNKNOWN = "unknown"  # a run that would decide did not complete

# --- outputs: what each entry point yields -----------------------------------------------------

LOSS = "loss"
ACTION = "action"
GRAD_PREFIX = "grad:"  # a parameter's gradient is output "grad:<parameter>"
PRIMARY_OUTPUT = {TRAINING: LOSS, INFERENCE: ACTION}

# --- the fp64 criterion ------------------------------------------------------------------------

HARNESS_TOLERANCE = 1e-4  # torch._dynamo.utils.same()'s default and the harness's fp32 tolerance
HARNESS_SOURCE = (
    "torch._dynamo.utils.same(eager, compiled, fp64_ref, tol), as PyTorch's dynamo benchmark "
    "harness applies it (benchmarks/dynamo/common.py, check_accuracy)"
)
# The harness's tolerance in float16 / bfloat16: torchbench.py's for --float16 / --amp, and
# huggingface.py's and timm_models.py's for inference (get_tolerance_and_cosine_flag).
LOW_PRECISION_TOLERANCE = 1e-3
LOW_PRECISION_SOURCE = (
    HARNESS_SOURCE + ", with the tolerance its suites give float16, bfloat16 and AMP runs "
    "(1e-3: torchbench.py, huggingface.py and timm_models.py, get_tolerance_and_cosine_flag)"
)
# same(..., cos_similarity=True), the harness's --cosine: passes at this cosine similarity.
COSINE_THRESHOLD = 0.99
# A module whose relative error grows this much from its inputs to its output adds error of its
# own, even when its inputs already fail the criterion.
GROWTH_ADDS_ERROR = 10.0


@dataclass(frozen=True)
class Fp64Criterion:
    """The pass rule for one compiled output; recorded with every report that used it."""

    tolerance: float = HARNESS_TOLERANCE
    multiplier_large: float = 2.0  # fp32 tensors of `small_below` elements or more
    multiplier_small: float = 3.0  # fewer elements, or fp16 / bf16
    small_below: int = 1000
    error_measure: str = "RMSE against an fp64 eager reference"
    source: str = HARNESS_SOURCE
    # The model runs in float16 / bfloat16: every output gets the larger multiplier, as same()
    # gives a result in those dtypes (an output cast up to float32 on its way out included).
    low_precision: bool = False
    # The harness's --cosine: cosine similarity of eager and compiled instead of the fp64 RMSE.
    cosine: bool = False
    cosine_threshold: float = COSINE_THRESHOLD

    @property
    def floor(self) -> float:
        return self.tolerance / 10.0

    def multiplier(self, numel: int, reduced_precision: bool) -> float:
        """`reduced_precision`: an fp16 or bf16 tensor, whose rounding noise dominates RMSE."""
        small = numel < self.small_below or reduced_precision
        return self.multiplier_small if small else self.multiplier_large

    def rule(self) -> str:
        if self.cosine:
            return (
                f"compiled passes when allclose(eager, compiled, atol=rtol={self.tolerance:g}), "
                f"or cosine_similarity(eager, compiled) >= {self.cosine_threshold:g} "
                "(the harness's --cosine; fp64 not consulted)"
            )
        return (
            f"compiled passes when allclose(eager, compiled, atol=rtol={self.tolerance:g}), or "
            f"RMSE(compiled, fp64) <= m * RMSE(eager, fp64) + {self.floor:g}, "
            f"m = {self.multiplier_large:g} (fp32, >= {self.small_below} elements) or "
            f"{self.multiplier_small:g} (fewer, or fp16/bf16)"
        )


def criterion_for(
    dtype: str, tolerance: float | None = None, cosine: bool = False
) -> Fp64Criterion:
    """The harness's criterion for outputs in `dtype`; `tolerance` replaces its allclose tol."""
    low = dtype in LOW_PRECISION_DTYPES
    criterion = Fp64Criterion(
        tolerance=LOW_PRECISION_TOLERANCE if low else HARNESS_TOLERANCE,
        source=LOW_PRECISION_SOURCE if low else HARNESS_SOURCE,
        low_precision=low,
        cosine=cosine,
    )
    return criterion if tolerance is None else dataclasses.replace(criterion, tolerance=tolerance)


def with_multiplier(criterion: Fp64Criterion, multiplier: float | None) -> Fp64Criterion:
    """The criterion with one multiplier for every tensor (None keeps same()'s rule by size)."""
    if multiplier is None:
        return criterion
    return dataclasses.replace(criterion, multiplier_large=multiplier, multiplier_small=multiplier)


# --- what was measured -------------------------------------------------------------------------


@dataclass
class OutputComparison:
    """One output (the loss, an action, a parameter's gradient) compared four ways.

    Differences between eager and compiled are absolute, in the output's own unit;
    `max_rel_diff` is the largest difference over the largest |eager| value.
    """

    name: str
    shape: list[int]
    max_abs_diff: float  # max |compiled - eager|
    max_rel_diff: float  # max |compiled - eager| / max |eager|
    rmse_diff: float  # RMSE(compiled, eager)
    eager_rerun_max_abs_diff: float | None  # eager's own noise: eager twice, same seed
    eager_rmse_vs_fp64: float | None
    compiled_rmse_vs_fp64: float | None
    multiplier: float
    # compiled_rmse_vs_fp64 / eager_rmse_vs_fp64: 1 means as close to exact as eager
    error_ratio: float | None
    bound: float | None  # multiplier * eager_rmse_vs_fp64 + floor
    within_allclose: bool
    passes: bool
    eager_value: float | None = None  # scalars only (a loss), for scale
    cosine_similarity: float | None = None  # of eager and compiled, flattened, as same() takes it


@dataclass
class DivergenceScenario:
    """One comparison of eager, eager again, compiled and fp64 under one setting."""

    name: str
    entry_point: str
    description: str
    settings: dict[str, Any]
    compiled_fresh: bool  # compiled after a dynamo reset, under this scenario's settings
    frames_compiled: int  # frames dynamo compiled during this scenario's first compiled call
    outputs: list[OutputComparison] = field(default_factory=list)
    passes: bool | None = None  # None: it could not run
    failing: list[str] = field(default_factory=list)
    primary: str = ""  # "loss" or "action"
    primary_max_abs_diff: float | None = None  # |compiled - eager| of the loss / action
    max_rel_diff: float | None = None  # the largest max_rel_diff over every output
    gradients_compared: int = 0
    gradients_failing: int = 0
    max_gradient_abs_diff: float | None = None
    numerics: NumericSettings | None = None  # as in force during the scenario
    seconds: float = 0.0
    error: str | None = None

    def output(self, name: str) -> OutputComparison | None:
        return next((o for o in self.outputs if o.name == name), None)


@dataclass
class RngAttribution:
    """The training figures random numbers and arithmetic are told apart by, per scenario.

    The scenarios are as-is and the what-ifs that ran. The record's `verdict` and `explanation`
    are the rules' reading of these figures (`analyzer.rules.divergence_reading`).
    """

    loss_diff: dict[str, float | None]  # scenario -> |compiled - eager| of the loss
    max_gradient_diff: dict[str, float | None]  # scenario -> largest |compiled - eager|
    passes: dict[str, bool | None]  # scenario -> every output passes the criterion


@dataclass
class DropoutSites:
    """What a dropout-off run switched off: module paths and functional names."""

    modules: list[str] = field(default_factory=list)  # `_DropoutNd` with p > 0
    attention: list[str] = field(default_factory=list)  # `nn.MultiheadAttention` with dropout > 0
    functional: list[str] = field(default_factory=list)  # torch.nn.functional names forced to 0


@dataclass
class ModuleDivergence:
    """One submodule call: how far compiled is from eager, and from fp64, at its output.

    `max_abs_error`, `max_rel_error` and `rmse` compare compiled with eager at the output leaf
    that fails the criterion, or else differs most. `error_growth` is the relative RMSE (RMSE
    over the RMS of the eager value) at the output over the same at the input: about 1 for a
    module that only carries error, large (infinite when its inputs matched exactly) for one
    that adds its own.
    """

    order: int  # position in finishing order
    path: str
    module_class: str
    call_index: int
    shape: list[int]
    max_abs_error: float
    max_rel_error: float
    rmse: float
    input_rmse: float | None  # None: no floating-point input
    error_growth: float | None
    eager_rmse_vs_fp64: float | None
    compiled_rmse_vs_fp64: float | None
    error_ratio: float | None  # compiled_rmse_vs_fp64 / eager_rmse_vs_fp64
    passes: bool  # the fp64 criterion, at every output leaf
    inputs_pass: bool  # the same criterion at every input leaf
    adds_error: bool  # fails, and its inputs pass (or the error grows GROWTH_ADDS_ERROR times)


@dataclass
class GradientDivergence:
    order: int  # position in backward order (the last module to finish forward comes first)
    parameter: str
    module_path: str
    shape: list[int]
    max_abs_error: float  # |compiled - eager|
    max_rel_error: float
    rmse: float
    eager_rmse_vs_fp64: float | None
    compiled_rmse_vs_fp64: float | None
    error_ratio: float | None
    passes: bool


@dataclass
class IsolatedCompile:
    """The named module compiled alone, the rest eager, no hooks: does the divergence return?"""

    module_path: str
    frames_compiled: int
    reproduced: bool | None  # None: it could not run
    outputs: list[OutputComparison] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


@dataclass
class Localization:
    entry_point: str
    reason: str
    settings: dict[str, Any]
    capture_note: str
    capture_reproduces: bool  # the recorded run's final outputs fail the criterion too
    capture_outputs: list[OutputComparison]
    modules: list[ModuleDivergence]  # finishing order
    gradients: list[GradientDivergence]  # backward order
    first_divergent_module: str | None
    first_divergent_class: str | None
    first_divergent_gradient: str | None
    backward_only: bool  # every module output passes, a gradient does not
    confirmation: IsolatedCompile | None
    seconds: float = 0.0


# --- the compiler stage, bisected -------------------------------------------------------------

WHOLE_MODEL = ""  # a bisection's module_path when the whole entry point was compiled
# The environment variables that make torch's CompilerBisector (torch._inductor.compiler_bisector)
# apply one stage by hand, read when torch is imported.
BISECT_BACKEND_VAR = "TORCH_BISECT_BACKEND"
BISECT_SUBSYSTEM_VAR = "TORCH_BISECT_SUBSYSTEM"
BISECT_MAX_VAR = "TORCH_BISECT_MAX"  # applications 0..N of the subsystem stay on, later ones off
# The bisector's run states: a backend alone, then per subsystem: switched off entirely, counting
# its applications, halving the range of applications left on.
BACKEND_STATE = "backend"
TEST_DISABLE = "test_disable"
FIND_MAX_BOUNDS = "find_max_bounds"
BISECT = "bisect"


@dataclass
class BisectionStep:
    """One test the bisector asked for: a fresh compile under one stage setting, one criterion."""

    backend: str | None
    subsystem: str | None
    state: str  # BACKEND_STATE, TEST_DISABLE, FIND_MAX_BOUNDS or BISECT
    passes: bool  # every output passes the fp64 criterion (an error does not)
    frames_compiled: int = 0
    seconds: float = 0.0
    error: str | None = None  # the compile or the call raised: first line


@dataclass
class StageConfigChange:
    """A subsystem the bisector tests by a config setting: the setting that removed the error."""

    config: str  # "inductor" or "aot_eager_decomp_partition" (functorch's config)
    field: str
    value: Any


@dataclass
class CompilerBisection:
    """torch's CompilerBisector run with the fp64 criterion as its test.

    It compiles with each backend in turn (eager, aot_eager, aot_eager_decomp_partition, ...,
    inductor) until one fails the criterion, then switches that backend's subsystems off one at
    a time, and for a subsystem applied many times (lowerings, passes) finds the first
    application that makes the outputs fail. `backend` None: every backend passes.
    """

    entry_point: str
    module_path: str  # the module compiled alone, the rest eager; WHOLE_MODEL: everything
    reason: str
    backends: list[str]  # the bisector's backends in the order it tries them
    backend: str | None  # the first backend whose compile fails the criterion
    subsystem: str | None  # the subsystem whose removal makes it pass; None: none does
    bisect_number: int | None  # the first application of the subsystem that makes it fail
    debug_info: str | None  # what that application was (for lowerings, the FX node)
    config_change: StageConfigChange | None  # a config subsystem: the setting that fixed it
    reproduce_env: dict[str, str]  # environment variables that apply the stage by hand
    steps: list[BisectionStep] = field(default_factory=list)  # the tests, each one compile
    compiles: int = 0
    reused_answers: int = 0  # tests the bisector asked again, answered without a compile
    seconds: float = 0.0
    error: str | None = None  # the bisection itself could not finish: first line


def bisection_environment(
    backend: str | None, subsystem: str | None, bisect_number: int | None, by_config: bool
) -> dict[str, str]:
    """The environment that applies the stage found, for a by-hand run of the user's script.

    A backend alone: every compile uses it. A subsystem applied many times: applications 0..N on,
    the rest off (N - 1 passes, N fails). A config subsystem is reached by its setting, not by
    the environment: only the backend is given.
    """
    if backend is None:
        return {}
    env = {BISECT_BACKEND_VAR: backend}
    if subsystem is not None and not by_config:
        env[BISECT_SUBSYSTEM_VAR] = subsystem
        if bisect_number is not None:
            env[BISECT_MAX_VAR] = str(bisect_number)
    return env


@dataclass
class PrecisionCheck:
    """Whether the TF32 scenarios ran, and how; the record's `tf32_explains` is the rules'."""

    ran: bool
    note: str


@dataclass
class DivergenceReport:
    target: str
    device: str
    torch_version: str
    compile: dict[str, Any]
    criterion: Fp64Criterion
    criterion_rule: str
    seed: int
    numerics: NumericSettings | None
    dtype: str = DEFAULT_DTYPE  # the model's and inputs' floating-point dtype
    scenarios: list[DivergenceScenario] = field(default_factory=list)
    attribution: RngAttribution | None = None  # None: the target has no training entry point
    dropout: DropoutSites | None = None  # the dropout the module draws for in train mode
    localization: Localization | None = None
    localization_note: str = ""
    bisection: CompilerBisection | None = None
    bisection_note: str = ""
    precision: PrecisionCheck | None = None
    dynamo_resets: int = 0
    notes: list[str] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def scenario(self, name: str) -> DivergenceScenario | None:
        return next((s for s in self.scenarios if s.name == name), None)


def failing_without_random_numbers(passes: Mapping[str, bool | None]) -> list[str]:
    """The scenarios, by name, whose outputs fail the criterion with no random numbers drawn.

    `passes` maps each scenario that was recorded to its pass (None: it could not run). Eval
    mode draws none; in training, the what-ifs take them out, and fail together only when none
    that ran passes. The probe localizes on this; the rules report it as arithmetic.
    """
    failing = [EVAL] if passes.get(EVAL) is False else []
    ran = [name for name in RNG_FREE if passes.get(name) is not None]
    if ran and not any(passes[name] for name in ran):
        failing.extend(ran)
    return failing
