"""Divergence rules: random numbers, arithmetic, a tolerance below rounding, a precision setting.

They read the recorded divergence probe, `probes["divergence"]`, laid out in
`probes.records.divergence` (the record is the schema). `probes["benchmark"]` (when present)
gives the absolute threshold the reference script applied (`settings.tolerance`) and its
measured `loss_diff` and `action_diff`.

The probe records figures and no judgement; `analyzer.rules.divergence_reading` reads them as a
whole (the attribution, the overall verdict, whether TF32 explains a difference), and the
findings here build on that reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding, Rule, Severity, code_block, make_finding, prose
from analyzer.format import NOT_MEASURED, sci, times
from analyzer.rules.compiler_stages import STAGES_DOC, reproduce_command, stage_sentence
from analyzer.rules.divergence_reading import (
    arithmetic_failures,
    attribute,
    output,
    scenario,
    tf32_explains,
)
from probes.records.divergence import (
    ACTION,
    AS_IS,
    BOTH,
    DROPOUT_OFF,
    EVAL,
    FALLBACK_RANDOM,
    LOSS,
    RNG,
    RNG_FREE,
    TF32_OFF,
    TF32_ON,
    UNTESTED,
)
from probes.records.names import BENCHMARK, DEFAULT_DTYPE, DIVERGENCE, LOW_PRECISION_DTYPES
from probes.records.reference import REFERENCE_TOLERANCE
from probes.records.serialize import as_number

# --- the rules of this family, documented beside their checks --------------------

RNG_DIVERGENCE = Rule(
    code="CD301",
    name="rng-divergence",
    title="Eager and compiled draw different random numbers",
    default_severity=Severity.INFO,
    what_it_does=prose(
        "Compares eager and compiled outputs (loss, gradients) from the same seed three ways:",
        "with random ops as they are, with `torch._inductor.config.fallback_random = True`,",
        "and with every dropout off. When the difference falls to rounding level in the last",
        "two, random numbers explain it. Where those what-ifs did not run (on a CPU unless",
        "`--rng-what-if`: each is one more compile of the training step), it reports random",
        "numbers as the likely cause, with medium confidence, when training fails with dropout",
        "active and inference in eval mode passes. In triage, flags a failed training-loss",
        "check of a policy whose training forward draws random numbers.",
    ),
    why_it_matters=prose(
        "Inductor generates random numbers in its own kernels, not with eager's generator, so",
        "`torch.manual_seed(42)` before each side still gives different dropout masks and",
        "noise. The outputs then differ although both programs are correct: ACT's training",
        "loss (dropout 0.1) differed by 1.75e-3 as is and by 1.2e-7 with `fallback_random`",
        "or with dropout off. A train-mode correctness check measures the random numbers, not",
        "the compiler.",
    ),
    example=code_block(
        """
        policy.train()  # dropout active
        torch.manual_seed(42)
        loss_eager, _ = policy.forward(batch)
        torch.manual_seed(42)
        loss_compiled, _ = compiled_forward(batch)
        assert abs(loss_eager - loss_compiled) < 1e-5  # fails: other dropout masks
        """
    ),
    use_instead=code_block(
        """
        import torch._inductor.config as inductor_config

        inductor_config.fallback_random = True  # before compiling; for comparisons only
        torch.manual_seed(42)
        loss_eager, _ = policy.forward(batch)
        torch.manual_seed(42)
        loss_compiled, _ = compiled_forward(batch)  # same masks as eager
        """
    ),
)


NUMERICAL_DIVERGENCE = Rule(
    code="CD302",
    name="numerical-divergence",
    title="Compiled output is further from fp64 than eager is",
    default_severity=Severity.ERROR,
    what_it_does=prose(
        "Compares eager and compiled each against an fp64 eager reference. When compiled's",
        "error is beyond a small multiple of eager's own, it walks the modules in execution",
        "order, names the first one that adds error (not the last one that carries it), and",
        "compiles that module alone to confirm it. When it reproduces alone (or with",
        "`--bisect`), torch's own `CompilerBisector` runs on it with the fp64 criterion as its",
        "test: the first backend that fails, the subsystem whose removal makes it pass, and the",
        "first application of that subsystem that breaks it (evidence `bisect_backend`,",
        "`bisect_subsystem`, `bisect_number`, `bisect_debug_info`, and the environment that",
        "reproduces it by hand).",
        STAGES_DOC,
    ),
    why_it_matters=prose(
        "Eager fp32 is itself off by rounding, and a compiled program that reorders sums and",
        "fuses ops is off by the same order. An error well beyond eager's own is not rounding:",
        "a miscompile, a precision change (TF32, reduced-precision reductions) or an op that",
        "Inductor lowers differently. It changes what the policy does and is worth a minimal",
        "repro upstream.",
    ),
    example=code_block(
        """
        reference = fp64_policy.model(batch_fp64)[0]
        err_eager = (policy.model(batch)[0].double() - reference).abs().max()  # 1e-6
        err_compiled = (compiled(batch)[0].double() - reference).abs().max()  # 5e-2
        """
    ),
    use_instead=code_block(
        """
        # compile the first divergent module alone to confirm it
        layer = policy.model.encoder.layers[0]
        torch.testing.assert_close(torch.compile(layer)(x), layer(x))
        # then minimise it: TORCHDYNAMO_REPRO_AFTER="aot" TORCHDYNAMO_REPRO_LEVEL=4
        """
    ),
)


TOLERANCE_TOO_STRICT = Rule(
    code="CD303",
    name="tolerance-too-strict",
    title="An absolute tolerance below rounding noise",
    default_severity=Severity.INFO,
    what_it_does=prose(
        "Flags a failed absolute threshold where compiled is as close to an fp64 reference as",
        "eager is. In float16 or bfloat16 (`--dtype`) it says when compiled is the closer of",
        "the two (Inductor keeps float32 inside a fused kernel and rounds once): not a",
        "divergence. In triage, flags an absolute threshold on a loss or an action that lies",
        "within the rounding noise of fp32 on the report's device.",
    ),
    why_it_matters=prose(
        "A compiled program reorders reductions and fuses operations, so its fp32 results",
        "differ from eager's in the last bits, and by more on GPUs that use TF32. On a loss of",
        "order 1, an absolute 1e-5 is about a hundred units in the last place of fp32: less",
        "than two correct programs differ after millions of multiply-adds (ACT's training",
        "loss on an H100 differed by 3.7e-4 relative with random numbers taken out). Such a",
        "threshold fails correct programs; PyTorch's own benchmarks compare each side with an",
        "fp64 reference instead (`torch._dynamo.utils.same`, compiled within 2-3x of eager's",
        "RMSE).",
    ),
    example=code_block(
        """
        assert abs(loss_eager - loss_compiled) < 1e-5  # absolute, whatever the scale
        """
    ),
    use_instead=code_block(
        """
        reference = fp64_policy.forward(batch_fp64)[0]  # eager in float64
        err_eager = abs(loss_eager.double() - reference)
        err_compiled = abs(loss_compiled.double() - reference)
        assert err_compiled <= 3 * err_eager + 1e-7  # as close to fp64 as eager is
        """
    ),
)


PRECISION_SETTING_MISMATCH = Rule(
    code="CD304",
    name="precision-setting-mismatch",
    title="A precision setting explains the difference",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "Records the numeric settings of every run (TF32 / `fp32_precision`,",
        "`torch.get_float32_matmul_precision()`, cuDNN TF32, deterministic algorithms) and, on",
        "CUDA, repeats the eager/compiled comparison with TF32 off on both sides and on on",
        "both sides. In triage, flags a float32 CUDA report whose differences are of the size",
        "TF32 gives (with the TF32 settings it states, or PyTorch's defaults, named as",
        "assumed) and ranks it before numerical-divergence.",
    ),
    why_it_matters=prose(
        "TF32 keeps 10 mantissa bits of matmul and convolution inputs, about 1e-3 relative",
        "error per product. When the two sides of a comparison run under different settings",
        "(a flag set between the eager and the compiled run, or Inductor's generated matmuls",
        "reading the setting at compile time while eager reads it at each call), the",
        "difference looks like a miscompile but is a setting.",
    ),
    example=code_block(
        """
        out_eager = policy.model(batch)  # TF32 off
        torch.set_float32_matmul_precision("high")  # TF32 on from here
        out_compiled = compiled(batch)  # compared at another precision
        """
    ),
    use_instead=code_block(
        """
        torch.set_float32_matmul_precision("highest")  # the same for both sides
        torch.backends.cudnn.allow_tf32 = False
        out_eager = policy.model(batch)
        out_compiled = compiled(batch)
        """
    ),
)

RULES: tuple[Rule, ...] = (
    RNG_DIVERGENCE,
    NUMERICAL_DIVERGENCE,
    TOLERANCE_TOO_STRICT,
    PRECISION_SETTING_MISMATCH,
)


STEP_FALLBACK_RANDOM = (
    "import torch._inductor.config as inductor_config\n"
    "inductor_config.fallback_random = True  # before compiling; for comparisons only"
)
STEP_FP64 = (
    "# a criterion with a reason: each side against an fp64 eager reference\n"
    "# (torch._dynamo.utils.same(eager, compiled, fp64_ref) in PyTorch's benchmark harness)\n"
    "assert rmse(compiled, fp64) <= 3 * rmse(eager, fp64) + 1e-5"
)
STEP_MINIFY = 'TORCHDYNAMO_REPRO_AFTER="aot" TORCHDYNAMO_REPRO_LEVEL=4 python your_script.py'


def check(probes: Mapping[str, Any]) -> list[Finding]:
    section = probes.get(DIVERGENCE)
    if not isinstance(section, Mapping):
        return []
    benchmark = probes.get(BENCHMARK)
    benchmark = benchmark if isinstance(benchmark, Mapping) else {}
    found = [
        rng_divergence(section),
        numerical_divergence(section),
        *tolerance_too_strict(section, benchmark),
        precision_setting_mismatch(section),
    ]
    return [f for f in found if f is not None]


# --- rng-divergence ----------------------------------------------------------------------------


def rng_divergence(section: Mapping[str, Any]) -> Finding | None:
    judged = attribute(section)
    if judged is None:
        return None
    if judged.verdict == UNTESTED:
        return _rng_divergence_unconfirmed(section)
    if judged.verdict not in (RNG, BOTH):
        return None
    attribution = section["attribution"]
    as_is = scenario(section, AS_IS) or {}
    loss = attribution.get("loss_diff") or {}
    gradients = attribution.get("max_gradient_diff") or {}
    passes = attribution.get("passes") or {}
    evidence: dict[str, Any] = {
        "loss_diff_as_is_abs": as_number(loss.get(AS_IS)),
        "loss_diff_fallback_random_abs": as_number(loss.get(FALLBACK_RANDOM)),
        "loss_diff_dropout_off_abs": as_number(loss.get(DROPOUT_OFF)),
        "max_gradient_diff_as_is_abs": as_number(gradients.get(AS_IS)),
        "gradients_failing_as_is_count": as_is.get("gradients_failing"),
        "gradients_compared_count": as_is.get("gradients_compared"),
    }
    sites = _dropout_sites(section)
    evidence["dropout_sites_count"] = sites
    fix = {
        name.replace("-", "_"): {
            "loss_diff_abs": as_number(loss.get(name)),
            "max_gradient_diff_abs": as_number(gradients.get(name)),
            "passes_fp64_criterion": passes.get(name),
        }
        for name in RNG_FREE
        if name in loss
    }
    before = as_number(loss.get(AS_IS)) or 0.0
    after = min((v for v in (as_number(loss.get(n)) for n in RNG_FREE) if v is not None), default=0)
    both = judged.verdict == BOTH
    rest = " Random numbers explain most of it, not all: see numerical-divergence." if both else ""
    return make_finding(
        RNG_DIVERGENCE,
        severity=Severity.WARNING if both else Severity.INFO,
        confidence="high",
        cause=(
            f"Eager and compiled drew different random numbers: the training loss differs by "
            f"{sci(before, NOT_MEASURED)} as is and by "
            f"{sci(loss.get(FALLBACK_RANDOM), NOT_MEASURED)} with fallback_random, "
            f"{sci(loss.get(DROPOUT_OFF), NOT_MEASURED)} with every dropout off "
            f"({sites} dropout sites).{rest}"
        ),
        evidence=evidence,
        measured_fix=fix,
        next_steps=[
            STEP_FALLBACK_RANDOM,
            "# or compare with random numbers out of the way\n"
            "policy.eval()  # inference outputs; or set every dropout's p to 0 for training",
            STEP_FP64,
        ],
        impact_error=max(before - after, 0.0),
    )


def _dropout_sites(section: Mapping[str, Any]) -> int:
    dropout = section.get("dropout") or {}
    return len(dropout.get("modules") or []) + len(dropout.get("attention") or [])


def _rng_divergence_unconfirmed(section: Mapping[str, Any]) -> Finding | None:
    """Training fails as is, no what-if ran, but inference without random numbers passes.

    The likely cause by elimination, not a measured one: a what-if (a compile of the training
    step with random numbers out) would confirm it, and the finding says how to run it.
    """
    as_is, inference = scenario(section, AS_IS), scenario(section, EVAL)
    sites = _dropout_sites(section)
    if not as_is or as_is.get("passes") is not False or sites == 0:
        return None
    if not inference or inference.get("passes") is not True:
        return None
    return make_finding(
        RNG_DIVERGENCE,
        severity=Severity.INFO,
        confidence="medium",
        cause=(
            f"Probably random numbers: the training loss differs by "
            f"{sci(as_is.get('primary_max_abs_diff'), NOT_MEASURED)} with dropout drawing at "
            f"{sites} sites, while inference in eval mode (no random numbers) passes the fp64 "
            f"criterion ({sci(inference.get('primary_max_abs_diff'), NOT_MEASURED)}). Not "
            "confirmed: the what-if that takes random numbers out of training did not run (it "
            "is one more compile of the training step; on CUDA and with --rng-what-if it runs)."
        ),
        evidence={
            "loss_diff_as_is_abs": as_number(as_is.get("primary_max_abs_diff")),
            "max_gradient_diff_as_is_abs": as_number(as_is.get("max_gradient_abs_diff")),
            "gradients_failing_as_is_count": as_is.get("gradients_failing"),
            "gradients_compared_count": as_is.get("gradients_compared"),
            "action_diff_eval_abs": as_number(inference.get("primary_max_abs_diff")),
            "inference_passes_fp64_criterion": True,
            "dropout_sites_count": sites,
            "rng_what_if": "not run",
        },
        next_steps=[
            "compile-diagnose <policy> --rng-what-if  # confirm: training with random numbers out",
            STEP_FALLBACK_RANDOM,
            STEP_FP64,
        ],
    )


# --- numerical-divergence ------------------------------------------------------------------------


def _worst_output(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    failing = [o for o in item.get("outputs") or [] if not o.get("passes")]
    primary = output(item, str(item.get("primary")))
    if primary is not None and not primary.get("passes"):
        return primary
    return max(failing, key=lambda o: as_number(o.get("error_ratio")) or 0.0, default=None)


def numerical_divergence(section: Mapping[str, Any]) -> Finding | None:
    failing = arithmetic_failures(section)
    if not failing:
        return None
    first = failing[0]
    worst = _worst_output(first) or {}
    localization = section.get("localization")
    localization = localization if isinstance(localization, Mapping) else None
    evidence: dict[str, Any] = {
        "scenario": first.get("name"),
        "output": worst.get("name"),
        "max_diff_abs": as_number(worst.get("max_abs_diff")),
        "eager_rmse_vs_fp64_abs": as_number(worst.get("eager_rmse_vs_fp64")),
        "compiled_rmse_vs_fp64_abs": as_number(worst.get("compiled_rmse_vs_fp64")),
        "error_ratio_x": as_number(worst.get("error_ratio")),
        "criterion_bound_abs": as_number(worst.get("bound")),
        "failing_outputs_count": len(first.get("failing") or []),
        "scenarios_failing": ", ".join(str(s.get("name")) for s in failing),
    }
    cause = (
        f"With random numbers taken out ({first.get('name')}), compiled {worst.get('name')} is "
        f"{times(worst.get('error_ratio'), NOT_MEASURED)} further from fp64 than eager is (RMSE "
        f"{sci(worst.get('compiled_rmse_vs_fp64'), NOT_MEASURED)} against "
        f"{sci(worst.get('eager_rmse_vs_fp64'), NOT_MEASURED)}; the criterion allows "
        f"{sci(worst.get('bound'), NOT_MEASURED)}): not rounding."
    )
    title, confidence = None, "low"
    steps = [STEP_MINIFY]
    if localization is not None:
        where, confidence, steps = _where(localization, evidence)
        cause += " " + where
        module = localization.get("first_divergent_module") or (
            (localization.get("confirmation") or {}).get("module_path")
        )
        if module:
            title = f"Compiled output is further from fp64 than eager is, first at {module}"
    else:
        cause += f" Not localized ({section.get('localization_note') or 'no localization run'})."
        steps.insert(0, "compile-diagnose ... --localize  # the first module that adds error")
    bisection = section.get("bisection")
    if isinstance(bisection, Mapping):
        cause += " " + _bisected(bisection, evidence, steps)
        confidence = "high" if bisection.get("backend") else confidence
    return make_finding(
        NUMERICAL_DIVERGENCE,
        **({"title": title} if title else {}),
        confidence=confidence,
        cause=cause,
        evidence=evidence,
        next_steps=steps,
        impact_error=as_number(worst.get("max_abs_diff")),
    )


def _where(localization: Mapping[str, Any], evidence: dict[str, Any]) -> tuple[str, str, list[str]]:
    """The localization's answer: sentence, confidence and next steps; fills the evidence."""
    module = localization.get("first_divergent_module")
    confirmation = localization.get("confirmation") or {}
    reproduced = confirmation.get("reproduced")
    steps = []
    if module is not None:
        row = next((m for m in localization.get("modules") or [] if m.get("path") == module), {})
        evidence.update(
            {
                "first_divergent_module": module,
                "module_class": localization.get("first_divergent_class"),
                "module_max_error_abs": as_number(row.get("max_abs_error")),
                "module_max_error_rel": as_number(row.get("max_rel_error")),
                "module_error_growth_x": as_number(row.get("error_growth")),
            }
        )
        named = module or "the top module itself, in code between its submodules"
        where = (
            f"The first module to add error is {named} "
            f"({localization.get('first_divergent_class')}), error growth "
            f"{times(row.get('error_growth'), NOT_MEASURED)} from its inputs."
        )
    elif localization.get("backward_only"):
        gradient = localization.get("first_divergent_gradient")
        evidence["first_divergent_gradient"] = gradient
        where = (
            "Every module's forward output passes; the first gradient to fail, in backward "
            f"order, is {gradient}'s: the divergence is in the backward pass."
        )
    else:
        return (
            "The per-module walk found no module whose output fails while its inputs pass: "
            "the error comes from code between modules, or from many small ones.",
            "low",
            [STEP_MINIFY],
        )
    path = confirmation.get("module_path")
    evidence["confirmed_alone"] = reproduced
    if reproduced and path:
        where += f" Compiled alone (the rest eager), {path} reproduces the divergence."
    elif reproduced is False:
        where += f" Compiled alone, {path} does not reproduce it: the cause needs its neighbours."
    if path:
        steps.append(
            "# compile the module alone, the rest eager\n"
            f'layer = model.get_submodule("{path}")\n'
            "layer.compile()\n"
            "torch.testing.assert_close(layer(x), eager_layer(x))"
        )
    steps.append(STEP_MINIFY)
    confidence = "high" if reproduced else "medium"
    return where, confidence, steps


def _bisected(bisection: Mapping[str, Any], evidence: dict[str, Any], steps: list[str]) -> str:
    """The bisection's answer as a sentence; fills the evidence, puts the by-hand run first."""
    where = bisection.get("module_path") or "the whole model"
    evidence.update(
        {
            "bisect_module": where,
            "bisect_backend": bisection.get("backend"),
            "bisect_subsystem": bisection.get("subsystem"),
            "bisect_number": bisection.get("bisect_number"),
            "bisect_debug_info": bisection.get("debug_info"),
            "bisect_stage": stage_sentence(bisection),
            "bisect_compiles_count": bisection.get("compiles"),
            "bisect_s": as_number(bisection.get("seconds")),
        }
    )
    command = reproduce_command(bisection)
    if command:
        evidence["bisect_reproduce"] = command.partition("  #")[0]
        steps.insert(0, command)
    if bisection.get("error"):
        return f"The compiler bisection on {where} stopped: {bisection['error']}."
    return (
        f"Bisected on {where} in {bisection.get('compiles')} compiles: {stage_sentence(bisection)}."
    )


# --- tolerance-too-strict ----------------------------------------------------------------------


def tolerance_too_strict(section: Mapping[str, Any], benchmark: Mapping[str, Any]) -> list[Finding]:
    threshold = as_number((benchmark.get("settings") or {}).get("tolerance")) or REFERENCE_TOLERANCE
    found = []
    evaluated = scenario(section, EVAL)
    dtype = str(section.get("dtype") or DEFAULT_DTYPE)
    measured = as_number(benchmark.get("action_diff"))
    action = _tolerance(evaluated, threshold, measured, ACTION, dtype)
    found += [action] if action else []
    loss = _tolerance(_training_without_rng(section), threshold, None, LOSS, dtype)
    found += [loss] if loss else []
    return found


def _training_without_rng(section: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The training run that shows arithmetic alone: as is when it passes, else a what-if."""
    for name in (AS_IS, *RNG_FREE):
        item = scenario(section, name)
        if item is not None and item.get("passes"):
            return item
    return None


def _tolerance(
    item: Mapping[str, Any] | None,
    threshold: float,
    measured: float | None,
    label: str,
    dtype: str,
) -> Finding | None:
    primary = output(item, label) if item else None
    if item is None or primary is None or not _as_close_as_eager(primary):
        return None
    diff = as_number(primary.get("max_abs_diff")) or 0.0
    if label == ACTION and measured is not None:
        diff = max(diff, measured)
    if diff < threshold:
        return None
    ratio = as_number(primary.get("error_ratio"))
    closer = ""
    if dtype in LOW_PRECISION_DTYPES and ratio is not None and ratio < 1.0:
        closer = (
            f" Compiled is the closer of the two to the exact result ({times(ratio)} of eager's "
            f"error), as when Inductor computes a fused chain of ops in float32 and rounds to "
            f"{dtype} once, where eager rounds after every op."
        )
    return make_finding(
        TOLERANCE_TOO_STRICT,
        confidence="high",
        title=f"An absolute {threshold:.0e} on the {label} is below rounding noise",
        cause=(
            f"The {label} differs by {sci(diff, NOT_MEASURED)}, above the absolute "
            f"{threshold:.0e}, yet compiled is as close to fp64 as eager is ({item.get('name')}: "
            f"RMSE {sci(primary.get('compiled_rmse_vs_fp64'), NOT_MEASURED)} against eager's "
            f"{sci(primary.get('eager_rmse_vs_fp64'), NOT_MEASURED)}, "
            f"{times(primary.get('error_ratio'), NOT_MEASURED)}): both programs are correct to "
            f"{dtype} rounding; the threshold is not.{closer}"
        ),
        evidence={
            "scenario": item.get("name"),
            f"{label}_diff_abs": diff,
            "threshold_abs": threshold,
            "eager_rmse_vs_fp64_abs": as_number(primary.get("eager_rmse_vs_fp64")),
            "compiled_rmse_vs_fp64_abs": as_number(primary.get("compiled_rmse_vs_fp64")),
            "error_ratio_x": ratio,
            "dtype": dtype,
        },
        next_steps=[STEP_FP64],
        impact_error=diff,
    )


def _as_close_as_eager(compared: Mapping[str, Any]) -> bool:
    """The RMSE part of the criterion: allclose alone does not show compiled is as exact."""
    error, bound = (
        as_number(compared.get("compiled_rmse_vs_fp64")),
        as_number(compared.get("bound")),
    )
    return error is not None and bound is not None and error <= bound


# --- precision-setting-mismatch ----------------------------------------------------------------


def precision_setting_mismatch(section: Mapping[str, Any]) -> Finding | None:
    if not tf32_explains(section):
        return None
    off, on = scenario(section, TF32_OFF) or {}, scenario(section, TF32_ON) or {}
    on_worst = _worst_output(on) or {}
    off_same = output(off, str(on_worst.get("name"))) or {}
    numerics = section.get("numerics") or {}
    return make_finding(
        PRECISION_SETTING_MISMATCH,
        confidence="high",
        cause=(
            f"With TF32 on for both sides, compiled {on_worst.get('name')} is "
            f"{times(on_worst.get('error_ratio'), NOT_MEASURED)} further from fp64 than eager; "
            f"with TF32 off for both, {times(off_same.get('error_ratio'), NOT_MEASURED)} and "
            "every output passes: TF32, not the compiler, explains the difference."
        ),
        evidence={
            "output": on_worst.get("name"),
            "tf32_on_max_diff_abs": as_number(on_worst.get("max_abs_diff")),
            "tf32_on_error_ratio_x": as_number(on_worst.get("error_ratio")),
            "tf32_off_max_diff_abs": as_number(off_same.get("max_abs_diff")),
            "tf32_off_error_ratio_x": as_number(off_same.get("error_ratio")),
            "cuda_matmul_allow_tf32": numerics.get("cuda_matmul_allow_tf32"),
            "cudnn_allow_tf32": numerics.get("cudnn_allow_tf32"),
            "float32_matmul_precision": numerics.get("float32_matmul_precision"),
        },
        measured_fix={
            "tf32_off": {
                "passes_fp64_criterion": off.get("passes"),
                "max_diff_abs": as_number(off_same.get("max_abs_diff")),
            }
        },
        next_steps=[
            'torch.set_float32_matmul_precision("highest")  # the same for both sides',
            "torch.backends.cudnn.allow_tf32 = False",
        ],
        impact_error=as_number(on_worst.get("max_abs_diff")),
    )
