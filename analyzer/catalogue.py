"""The rule catalogue: every finding the analyzer can yield, documented in one place.

`compile-diagnose explain CODE` and `docs/rules.md` are generated from these objects.
"""

from __future__ import annotations

from analyzer.findings import Rule, Severity

RULES: tuple[Rule, ...] = (
    Rule(
        code="CD101",
        name="compiled-path-not-exercised",
        title="The timed entry point ran no compiled code",
        default_severity=Severity.ERROR,
        what_it_does="Checks that dynamo captured frames while the entry point that is timed ran.",
        why_it_matters="A speedup or a correctness figure measured on eager code says nothing "
        "about torch.compile.",
        example="policy_c = torch.compile(policy)\npolicy_c.select_action(batch)  # runs eager",
        use_instead="policy_c = copy.deepcopy(policy)\npolicy_c.model.compile()",
    ),
    Rule(
        code="CD102",
        name="graph-break",
        title="Graph break in a timed entry point",
        default_severity=Severity.WARNING,
        what_it_does="Reports each place where dynamo stopped a graph, with its category and cost.",
        why_it_matters="Each break splits the program into graphs with eager Python between "
        "them: fewer fusions, more launches, and host work on the critical path.",
        example="loss_dict = {'l1_loss': l1_loss.item()}",
        use_instead="loss_dict = {'l1_loss': l1_loss.detach()}  # read it after the step",
    ),
    Rule(
        code="CD103",
        name="recompilation",
        title="Recompiled under ordinary use",
        default_severity=Severity.WARNING,
        what_it_does="Calls the compiled entry point as users do and reports each recompile "
        "with the guard that failed.",
        why_it_matters="Each recompile costs a full compile; past the recompile limit torch "
        "silently runs eager.",
        example="compiled(batch_of_8); compiled(batch_of_1)  # guard on the batch size",
        use_instead="torch._dynamo.mark_dynamic(x, 0)  # or torch.compile(dynamic=True)",
    ),
    Rule(
        code="CD201",
        name="launch-bound",
        title="The GPU is idle most of a call",
        default_severity=Severity.WARNING,
        what_it_does="Compares kernel time with the span of a call in a profiler trace.",
        why_it_matters="When the host cannot launch kernels fast enough, fusing them saves "
        "little; CUDA graphs remove the launches.",
        example="torch.compile(model)  # default mode, hundreds of small kernels",
        use_instead='torch.compile(model, mode="reduce-overhead")',
    ),
    Rule(
        code="CD202",
        name="eager-work-outside-compiled-region",
        title="Much of a compiled call runs outside compiled regions",
        default_severity=Severity.WARNING,
        what_it_does="Measures the time of a compiled call spent outside 'Torch-Compiled Region' "
        "events.",
        why_it_matters="Work outside the graph (optimizer step, grad clipping, loss bookkeeping, "
        "code between graph breaks) gets no speedup from compiling.",
        example="loss.backward(); clip_grad_norm_(params, 10); optimizer.step()  # all eager",
        use_instead="optimizer = torch.optim.AdamW(params, fused=True)\n"
        "optimizer.step = torch.compile(optimizer.step)",
    ),
    Rule(
        code="CD203",
        name="compile-time-cost",
        title="Compile time and the calls needed to earn it back",
        default_severity=Severity.INFO,
        what_it_does="Sets the first-call compile time against the time saved per call.",
        why_it_matters="A compile that saves 1 ms a call after 60 s of compiling pays off only "
        "after 60,000 calls.",
        example="torch.compile(policy.model)  # cold cache on every run",
        use_instead="export TORCHINDUCTOR_CACHE_DIR=~/.cache/inductor  # reuse compiled code",
    ),
    Rule(
        code="CD301",
        name="rng-divergence",
        title="Eager and compiled draw different random numbers",
        default_severity=Severity.INFO,
        what_it_does="Compares outputs with random ops as they are, with "
        "inductor fallback_random, and with dropout off.",
        why_it_matters="Inductor generates its own random numbers: the same seed gives other "
        "dropout masks, so outputs differ without any arithmetic error.",
        example="torch.manual_seed(0); eager(x) != compiled(x)  # dropout active",
        use_instead="torch._inductor.config.fallback_random = True  # only to compare",
    ),
    Rule(
        code="CD302",
        name="numerical-divergence",
        title="Compiled output is further from fp64 than eager is",
        default_severity=Severity.ERROR,
        what_it_does="Compares eager and compiled against an fp64 eager reference and names the "
        "first module that adds error.",
        why_it_matters="An error beyond eager's own rounding is a miscompile or a precision "
        "change worth reporting.",
        example="compiled(x) - fp64(x) >> eager(x) - fp64(x)",
        use_instead="compile the named module alone and report it upstream with a minimal repro",
    ),
    Rule(
        code="CD303",
        name="tolerance-too-strict",
        title="An absolute tolerance below rounding noise",
        default_severity=Severity.INFO,
        what_it_does="Flags a failed absolute threshold where compiled is as close to fp64 as "
        "eager is.",
        why_it_matters="Reordered floating-point sums differ in the last bits; a threshold "
        "below that noise fails correct programs.",
        example="abs(loss_eager - loss_compiled) < 1e-5",
        use_instead="compare both to an fp64 reference: err(compiled) <= k * err(eager)",
    ),
    Rule(
        code="CD304",
        name="precision-setting-mismatch",
        title="A precision setting explains the difference",
        default_severity=Severity.WARNING,
        what_it_does="Repeats the comparison with TF32 off and on for both sides.",
        why_it_matters="TF32 matmuls carry 10 mantissa bits: a mismatch of settings looks like "
        "a miscompile.",
        example="torch.backends.cuda.matmul.allow_tf32 = True  # on one side only",
        use_instead='torch.set_float32_matmul_precision("highest")  # on both sides',
    ),
    Rule(
        code="CD401",
        name="benchmark-methodology",
        title="A measurement cannot mean what it claims",
        default_severity=Severity.WARNING,
        what_it_does="Checks how a figure was measured: shared weights or state, stale action "
        "queues, consistency over different training states, warm-up, one-sided timing.",
        why_it_matters="A figure measured the wrong way answers another question than the one "
        "in its label.",
        example="policy_c = torch.compile(policy)  # shares weights and action queue",
        use_instead="policy_c = copy.deepcopy(policy); reset both before comparing",
    ),
    Rule(
        code="CD501",
        name="probe-failed",
        title="A probe could not finish",
        default_severity=Severity.WARNING,
        what_it_does="Reports a probe that raised, with its error, while the others went on.",
        why_it_matters="Findings that need that probe's measurements are missing from the "
        "diagnosis.",
        example="torch.OutOfMemoryError during profiling",
        use_instead="rerun with a smaller --batch-size, or without that probe",
    ),
)

_BY_NAME = {rule.name: rule for rule in RULES}
_BY_CODE = {rule.code: rule for rule in RULES}


def rule_by_name(name: str) -> Rule:
    return _BY_NAME[name]


def lookup(code_or_name: str) -> Rule | None:
    """A rule by its code (case-insensitive) or its name."""
    return _BY_CODE.get(code_or_name.upper()) or _BY_NAME.get(code_or_name.lower())
