"""Compile rules: graph breaks, recompiles, and timed calls that never ran compiled code.

They read the recorded `probes["graph_breaks"]` and `probes["benchmark"]["capture"]` (their
schema: `probes.records.compile`) and, to point a finding at its frame in the tlparse report,
`probes["compile_trace"]` (`probes.records.compile_trace`); a graph break's cost per call comes
from `probes["speed"]` (`probes.records.speed.BreakCost`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from analyzer.findings import (
    Finding,
    Rule,
    Severity,
    SourceLocation,
    code_block,
    make_finding,
    prose,
)
from analyzer.format import ms, short_path
from probes.records.compile import (
    CATEGORY_LABELS,
    DATA_DEPENDENT_BRANCH,
    DYNAMIC_SHAPE,
    FULLGRAPH_KEY,
    OTHER,
    PRINT_LOGGING,
    RECOMPILES_KEY,
    SCALAR_READ,
    UNSUPPORTED_CALL,
    entry_point_reports,
)
from probes.records.names import BENCHMARK, COMPILE_TRACE, GRAPH_BREAKS, RECOMPILES, SPEED
from probes.records.serialize import as_number

# --- the rules of this family, documented beside their checks --------------------

COMPILED_PATH_NOT_EXERCISED = Rule(
    code="CD101",
    name="compiled-path-not-exercised",
    title="The timed entry point ran no compiled code",
    default_severity=Severity.ERROR,
    what_it_does=prose(
        "Checks that compiled code actually ran for the entry point whose time and output are",
        "measured: that dynamo captured at least one frame (its `frames` counter, its",
        "compilation metrics, or a `Torch-Compiled Region` profiler event) while that entry",
        "point was called. Without a benchmark (pi0's CPU preset), the recompile scenarios'",
        "compiled copy's first call is checked the same way. In triage of a benchmark report,",
        "flags an action difference of exactly 0.0 together with a speedup near 1.0x.",
    ),
    why_it_matters=prose(
        "`torch.compile(module)` returns an `OptimizedModule` that compiles `forward` only;",
        "every other method, such as a LeRobot policy's `select_action`, is forwarded to the",
        "eager module. A benchmark that calls such a method compares eager with itself: the",
        "outputs match bit for bit (a real backend almost never does that for a conv +",
        "transformer model) and the speedup is the noise between two eager runs. Such figures",
        "say nothing about torch.compile, and a passing correctness check hides the fact.",
        "A policy's own switch can miss its path too: lerobot 0.6.1's pi0_fast compiles",
        "`sample_actions_fast`, while its inference decodes with `sample_actions_fast_kv_cache`.",
    ),
    example=code_block(
        """
        policy_compiled = torch.compile(policy)  # compiles policy.forward only
        action = policy_compiled.select_action(batch)  # runs the eager method
        """
    ),
    use_instead=code_block(
        """
        policy_compiled = copy.deepcopy(policy)  # nothing shared with eager
        policy_compiled.select_action = torch.compile(policy_compiled.select_action)
        policy_compiled.forward = torch.compile(policy_compiled.forward)
        # or compile the network inside the policy: policy_compiled.model.compile()
        """
    ),
)


GRAPH_BREAK = Rule(
    code="CD102",
    name="graph-break",
    title="Graph break in a timed entry point",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "Reports each place where dynamo stopped tracing a timed entry point and split it",
        "into separate graphs: the reason (with torch's graph-break id, `GBnnnn`, where it has",
        "one), the file, line and source line in your code, how often it was hit, a category",
        "you can act on (scalar read, data-dependent control flow, print/logging, unsupported",
        "call, dynamic shape, other) and, with the speed probe, the eager time per call between",
        "the compiled regions it separates.",
    ),
    why_it_matters=prose(
        "At a break dynamo ends the current graph, runs the offending code as eager Python and",
        "starts a new graph after it. Inductor cannot fuse across the break, each graph adds",
        "launches, guards and compile time, and a scalar read such as `.item()` makes the host",
        "wait for the device to finish. In a training step the backward graph is split too.",
        "ACT's training forward breaks at `loss_dict = {'l1_loss': l1_loss.item()}`",
        "(`modeling_act.py:150` in lerobot 0.6.1).",
    ),
    example=code_block(
        """
        def forward(self, batch):
            loss = self.compute_loss(batch)
            loss_dict = {"l1_loss": loss.item()}  # Tensor.item(): graph break
            return loss, loss_dict
        """
    ),
    use_instead=code_block(
        """
        def forward(self, batch):
            loss = self.compute_loss(batch)
            loss_dict = {"l1_loss": loss.detach()}  # stays a tensor: no break
            return loss, loss_dict


        # read the number outside the compiled region, after the step:
        logged = {key: value.item() for key, value in loss_dict.items()}
        """
    ),
)


RECOMPILATION = Rule(
    code="CD103",
    name="recompilation",
    title="Recompiled under ordinary use",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "Calls the compiled entry point the way it is used (another batch size, train then",
        "eval, with and without grad, a second call with a filled action queue) and reports",
        "each recompile with the guard that failed, from",
        "`torch._dynamo.utils.get_compilation_metrics()` or the `recompiles` log, and whether",
        "the recompile limit was reached (an error when it was). A guard that failed once per",
        "frame in a scenario, for a change torch handles by design, is info: a size the",
        "recompiled graph then leaves symbolic (automatic dynamic shapes), a size of 0 or 1",
        "(always specialised), or a switch of grad mode, global state or a module's `training`",
        "flag, which keeps one graph per state.",
    ),
    why_it_matters=prose(
        "Dynamo specialises a compiled frame on what it saw (tensor shapes, Python values,",
        "module state such as `training`) and guards on it. A failed guard compiles the frame",
        "again, seconds to minutes on the caller's time, often inside a loop that is being",
        "timed. After `torch._dynamo.config.recompile_limit` recompiles of one frame (8 by",
        "default) torch stops compiling it and silently runs it eager from then on.",
    ),
    example=code_block(
        """
        policy.select_action = torch.compile(policy.select_action)
        policy.select_action(batch)  # compiles: the queue is empty, predicts a chunk
        policy.select_action(batch)  # recompiles: guard `not self._action_queue` fails
        """
    ),
    use_instead=code_block(
        """
        # compile the tensor work, not the Python bookkeeping around it
        policy.model.compile()
        # a size that changes between calls: mark it dynamic before the first call
        torch._dynamo.mark_dynamic(batch["observation.state"], 0)
        """
    ),
)


COMPILATION_FAILED = Rule(
    code="CD104",
    name="compilation-failed",
    title="torch.compile raised an error",
    default_severity=Severity.ERROR,
    what_it_does=prose(
        "Reports a compile that raised (`compilation_successful: false` in a benchmark",
        "report) with the first line of its error, and the stage it came from where the error",
        "names one: dynamo (tracing Python), AOTAutograd (the backward graph) or the backend",
        "(Inductor's code generation).",
    ),
    why_it_matters=prose(
        "Without a compiled program no other figure of a benchmark means anything, and the",
        "stage that failed decides where the fix lies: in your code (dynamo cannot trace it),",
        "in AOTAutograd, or in Inductor. Running the same model through successively more of",
        "the stack tells them apart in minutes.",
    ),
    example=code_block(
        """
        compiled = torch.compile(policy.model)
        compiled(batch)  # raises torch._dynamo.exc.BackendCompilerFailed
        """
    ),
    use_instead=code_block(
        """
        torch.compile(policy.model, backend="eager")(batch)  # dynamo alone
        torch.compile(policy.model, backend="aot_eager")(batch)  # + AOTAutograd
        torch.compile(policy.model)(batch)  # + Inductor
        # TORCHDYNAMO_REPRO_AFTER="dynamo" writes a minimal repro of the failure
        """
    ),
)

RULES: tuple[Rule, ...] = (
    COMPILED_PATH_NOT_EXERCISED,
    GRAPH_BREAK,
    RECOMPILATION,
    COMPILATION_FAILED,
)


CATEGORY_STEPS = {
    SCALAR_READ: [
        "Keep the value a tensor in compiled code (`loss.detach()`, not `loss.item()`) and "
        "read it with `.item()` after the step, outside the compiled function.",
        "torch._dynamo.config.capture_scalar_outputs = True  # trace the read instead of breaking",
    ],
    DATA_DEPENDENT_BRANCH: [
        "Replace the Python `if` on a tensor with `torch.where(cond, a, b)`, or with "
        "`torch.cond(pred, true_fn, false_fn, (x,))` when both branches are functions.",
        "Or move the branch outside the compiled function.",
    ],
    PRINT_LOGGING: [
        "Remove the call from the compiled path, or guard it: "
        "`if not torch.compiler.is_compiling(): ...`",
        "torch._dynamo.config.reorderable_logging_functions.add(print)  # for print / warnings",
    ],
    UNSUPPORTED_CALL: [
        "Use the torch equivalent (e.g. `torch.randint` for `np.random.choice`) so that "
        "dynamo can trace it, or move the call outside the compiled function.",
    ],
    DYNAMIC_SHAPE: [
        "Avoid ops whose output shape depends on the data (`nonzero`, `unique`, boolean "
        "masks) in the compiled path, or mark the dimension dynamic: "
        "`torch._dynamo.mark_dynamic(x, 0)`.",
    ],
    OTHER: ['TORCH_LOGS="graph_breaks" python your_script.py  # the full reason and stack'],
}

# Hints of torch's registry that ask for a bug report: nothing a user can do in their code.
_BOILERPLATE_HINT = re.compile(r"report an issue|file an issue|Dynamo bug", re.I)


def check(probes: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    section = probes.get(GRAPH_BREAKS)
    traces = probes.get(COMPILE_TRACE) or {}
    traced_breaks = (traces.get(BENCHMARK) or {}).get("graph_breaks") or []
    recompile_report = ((traces.get(RECOMPILES) or {}).get("tlparse") or {}).get("index_html")
    if isinstance(section, Mapping):
        fullgraph = section.get(FULLGRAPH_KEY) or {}
        speed = probes.get(SPEED) or {}
        for entry_point, report in entry_point_reports(section).items():
            found = graph_break_findings(entry_point, report, fullgraph.get(entry_point))
            costs = (speed.get(entry_point) or {}).get("break_costs") or []
            findings += [
                _with_break_cost(_with_traced_frame(f, traced_breaks), costs) for f in found
            ]
        for entry_point, report in (section.get(RECOMPILES_KEY) or {}).items():
            for found in recompilation_findings(str(entry_point), report):
                if recompile_report and "tlparse_frames" in found.evidence:
                    found.evidence["tlparse_report"] = recompile_report
                findings.append(found)
    findings += compilation_failed_findings(probes)
    benchmark = probes.get(BENCHMARK)
    captured = (benchmark.get("capture") or {}) if isinstance(benchmark, Mapping) else {}
    for entry_point, capture in captured.items():
        found = compiled_path_not_exercised(str(entry_point), capture)
        findings += [found] if found else []
    scenarios = (section.get(RECOMPILES_KEY) or {}) if isinstance(section, Mapping) else {}
    for entry_point, report in scenarios.items():
        if entry_point not in captured:  # the benchmark's capture says it, where there is one
            found = first_call_compiled_nothing(str(entry_point), report)
            findings += [found] if found else []
    return findings


# --- graph-break -------------------------------------------------------------------------------


def _with_traced_frame(finding: Finding, traced_breaks: Sequence[Mapping[str, Any]]) -> Finding:
    """Name the frame id (`[0/1]`) under which the tlparse report shows this break."""
    location = finding.location
    for traced in traced_breaks:
        if location is not None and _same_line(location, traced):
            finding.evidence["tlparse_frame"] = traced.get("frame_id")
            break
    return finding


def _same_line(location: SourceLocation, recorded: Any) -> bool:
    """A recorded location on the same line of the same file (by name, as paths may differ in
    form between records)."""
    other = SourceLocation.from_record(recorded)
    return (
        other is not None
        and other.lineno == location.lineno
        and Path(other.filename).name == Path(location.filename).name
    )


def _with_break_cost(finding: Finding, break_costs: Sequence[Mapping[str, Any]]) -> Finding:
    """Add the eager time per call between the compiled regions this break separates, as the
    speed probe measured it at the break's line."""
    location = finding.location
    costs = [c for c in break_costs if location and _same_line(location, c.get("location"))]
    cost_ms = [as_number(c.get("ms_per_call")) for c in costs]
    if not costs or any(value is None for value in cost_ms):
        return finding
    total = sum(value for value in cost_ms if value is not None)
    finding.evidence["cost_ms_per_call"] = total
    finding.evidence["resumed_frames"] = [str(c.get("compile_id")) for c in costs]
    finding.impact_ms = total
    finding.cause += f" The eager code at the break costs {ms(total)} per call."
    return finding


def graph_break_findings(
    entry_point: str, report: Mapping[str, Any], fullgraph: Mapping[str, Any] | None = None
) -> list[Finding]:
    """One finding per place in the user's code where the entry point's graph breaks."""
    by_place: dict[Any, list[Mapping[str, Any]]] = {}
    for brk in report.get("breaks") or []:
        loc = brk.get("location") or {}
        by_place.setdefault((loc.get("filename"), loc.get("lineno")), []).append(brk)
    return [_graph_break(entry_point, report, group, fullgraph) for group in by_place.values()]


def _graph_break(
    entry_point: str,
    report: Mapping[str, Any],
    group: Sequence[Mapping[str, Any]],
    fullgraph: Mapping[str, Any] | None,
) -> Finding:
    first = group[0]
    category = str(first.get("category") or OTHER)
    label = CATEGORY_LABELS.get(category, category)
    location = SourceLocation.from_record(first.get("location"))
    hits = sum(int(b.get("hits") or 1) for b in group)
    graphs = int(report.get("graph_count") or 0)
    where = f" at {short_path(location.filename)}:{location.lineno}" if location else ""
    evidence: dict[str, Any] = {
        "entry_point": entry_point,
        "category": category,
        "reason": "; ".join(dict.fromkeys(str(b.get("reason")) for b in group)),
        "graph_break_id": "; ".join(dict.fromkeys(str(b.get("gb_id") or "none") for b in group)),
        "hit_count": hits,
        "graph_count": graphs,
        "ops_in_graph_before": first.get("ops_before"),
        "ops_in_graph_after": first.get("ops_after"),
    }
    if fullgraph is not None:
        evidence["compiles_with_fullgraph"] = bool(fullgraph.get("compiles"))
    if graphs == 0:
        cause = (
            f"Dynamo gave up on the whole {entry_point} call at this {label}{where} "
            f"({first.get('reason')}): no graph was captured and the call runs eagerly."
        )
    elif graphs == 1:
        cause = (
            f"The {entry_point} graph breaks{where} on a {label} ({first.get('reason')}): "
            "the compiled graph ends there and what follows runs as eager Python."
        )
    else:
        cause = (
            f"The {entry_point} graph breaks{where} on a {label} ({first.get('reason')}): "
            f"the call runs as {graphs} graphs with eager Python between them."
        )
    return make_finding(
        GRAPH_BREAK,
        title=f"Graph break in {entry_point}: {label}{where}",
        severity=Severity.ERROR if graphs == 0 else Severity.WARNING,
        confidence="high",
        cause=cause,
        evidence=evidence,
        next_steps=_break_steps(category, group),
        location=location,
    )


def _break_steps(category: str, group: Sequence[Mapping[str, Any]]) -> list[str]:
    steps = list(CATEGORY_STEPS.get(category, CATEGORY_STEPS[OTHER]))
    for brk in group:
        steps += [h for h in brk.get("hints") or [] if not _BOILERPLATE_HINT.search(h)]
        if brk.get("doc_url"):
            steps.append(f"{brk.get('gb_id') or 'Details'}: {brk['doc_url']}")
    return list(dict.fromkeys(steps))


# --- recompilation -----------------------------------------------------------------------------


# A guard on a tensor's size ("tensor 'x' size mismatch at index 0. expected 8, actual 2").
_SIZE_GUARD = re.compile(r"size mismatch|size\(\)|stride")
# A guard on a state with two values: torch 2.11 writes "GLOBAL_STATE changed: grad_mode" for
# a grad switch and "self._modules['drop'].training == False" for train/eval.
_MODE_GUARD = re.compile(r"GLOBAL_STATE|grad_mode|grad_enabled|\.training\b|\btraining ==")
# A size guard that failed for a size of 0 or 1, which torch always specialises on.
_ZERO_ONE_SIZE = re.compile(r"size mismatch at index \d+\. expected \d+, actual (?P<size>[01])\b")


def recompilation_findings(entry_point: str, report: Mapping[str, Any]) -> list[Finding]:
    """One finding per failing guard of each scenario (a queue draining 4, 3, 2 is one guard)."""
    findings = []
    limit = report.get("recompile_limit")
    for scenario in report.get("scenarios") or []:
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for recompile in scenario.get("recompiles") or []:
            groups.setdefault(_guard_shape(str(recompile.get("guard"))), []).append(recompile)
        # The limit belongs to the guard whose recompile was refused, when torch says which.
        limit_named = any(r.get("limit_hit") for r in scenario.get("recompiles") or [])
        for recompiles in groups.values():
            limit_hit = any(r.get("limit_hit") for r in recompiles) or (
                bool(scenario.get("limit_hit")) and not limit_named
            )
            findings.append(
                _recompilation(entry_point, report, scenario, recompiles, limit, limit_hit)
            )
    return findings


def _recompilation(
    entry_point: str,
    report: Mapping[str, Any],
    scenario: Mapping[str, Any],
    recompiles: Sequence[Mapping[str, Any]],
    limit: Any,
    limit_hit: bool,
) -> Finding:
    first = recompiles[0]
    guard = str(first.get("guard"))
    function = first.get("function") or report.get("function") or entry_point
    evidence: dict[str, Any] = {
        "entry_point": entry_point,
        "scenario": scenario.get("name"),
        "function": function,
        "failing_guard": guard,
        "recompile_count": len(recompiles),
        "recompile_limit": limit,
        "limit_hit": limit_hit,
    }
    guards = list(dict.fromkeys(str(r.get("guard")) for r in recompiles))
    if len(guards) > 1:
        evidence["failing_guards"] = guards
    if first.get("guard_source"):
        evidence["guarded_line"] = first["guard_source"]
    frames = [f"[{r['compile_id']}]" for r in recompiles if r.get("compile_id")]
    if frames:
        evidence["tlparse_frames"] = frames
    symbols = _symbolic_sizes(recompiles)
    if symbols:
        evidence["symbolic_sizes"] = symbols
    times = "once" if len(recompiles) == 1 else f"{len(recompiles)} times"
    cause = (
        f"Under '{scenario.get('name')}', {function} recompiled {times} because the guard "
        f"`{guard}` failed."
    )
    by_design = None if limit_hit else _by_design(recompiles)
    if limit_hit:
        cause += (
            f" It reached the recompile limit ({limit}): from then on dynamo runs the calls "
            "it cannot match eagerly, without saying so."
        )
    elif by_design:
        cause += f" {by_design}"
    elif _specialised_size(recompiles):
        cause += (
            " The recompiled graph holds every size as a number: torch specialised it on this "
            "size, so each new size fails the guard again."
        )
    evidence["by_design"] = by_design is not None
    return make_finding(
        RECOMPILATION,
        severity=_recompile_severity(limit_hit, by_design),
        confidence="high",
        cause=cause,
        evidence=evidence,
        next_steps=_recompile_steps(guards, limit_hit, limit),
        location=SourceLocation.from_record(first.get("location")),
    )


def _recompile_severity(limit_hit: bool, by_design: str | None) -> Severity:
    if limit_hit:
        return Severity.ERROR
    return Severity.INFO if by_design else Severity.WARNING


def _by_design(recompiles: Sequence[Mapping[str, Any]]) -> str | None:
    """Why one recompile is one torch makes by design, from its figures; None if it is not.

    Only a guard that failed once per frame in its scenario: one that fails again (every size of a
    size the code specialises on, every length of a queue) costs a compile each time.
    """
    if _most_per_frame(recompiles) != 1:
        return None
    guard = str(recompiles[0].get("guard"))
    symbols = _symbolic_sizes(recompiles)
    if _SIZE_GUARD.search(guard) and symbols:
        named = (
            f"the symbol {symbols[0]}" if len(symbols) == 1 else "the symbols " + ", ".join(symbols)
        )
        return (
            "Torch marked the dimension dynamic after this recompile: the recompiled graph "
            f"takes the size as {named}, so later sizes reuse it."
        )
    zero_one = _ZERO_ONE_SIZE.search(guard)
    if zero_one:
        return (
            f"Torch specialises a size of {zero_one['size']} by design (sizes 0 and 1 get a "
            "graph of their own), so this recompile serves that size only."
        )
    if _MODE_GUARD.search(guard):
        return (
            "The guard checks a state with two values (grad mode, global state or `training`): "
            "torch keeps one graph per value and this scenario recompiled for it once, so later "
            "calls in either state reuse a graph."
        )
    return None


def _most_per_frame(recompiles: Sequence[Mapping[str, Any]]) -> int:
    """The most recompiles of one frame. A graph break splits a function into frames (the
    function and its resume), and a grad switch recompiles each once: once per frame, not twice.
    A recompile without a compile id counts as a frame of its own."""
    frames = Counter(
        str(r["compile_id"]).partition("/")[0] if r.get("compile_id") else f"#{i}"
        for i, r in enumerate(recompiles)
    )
    return max(frames.values(), default=0)


def _specialised_size(recompiles: Sequence[Mapping[str, Any]]) -> bool:
    """A size guard whose recompiled graphs were recorded with no symbolic size at all."""
    return all(
        _SIZE_GUARD.search(str(r.get("guard"))) and r.get("symbolic_sizes") == {}
        for r in recompiles
    )


def _symbolic_sizes(recompiles: Sequence[Mapping[str, Any]]) -> list[str]:
    """The symbols (`s77`) the recompiled graphs leave as sizes, as the probe recorded them."""
    found = [str(symbol) for r in recompiles for symbol in (r.get("symbolic_sizes") or {}).values()]
    return list(dict.fromkeys(found))


def _guard_shape(guard: str) -> str:
    """A guard with its numbers taken out: `len(q) == 4` and `len(q) == 3` are one guard."""
    return re.sub(r"\d+", "N", guard)


def _recompile_steps(guards: Sequence[str], limit_hit: bool, limit: Any) -> list[str]:
    text = " ".join(guards)
    steps = []
    if "_action_queue" in text:
        steps += [
            "policy.reset()  # before each compared or timed select_action: an empty queue",
            "Compile the model, not the queue logic: `policy.model.compile()` (or compile "
            "`predict_action_chunk`), and keep `select_action` eager.",
        ]
    if _SIZE_GUARD.search(text):
        steps += [
            "torch._dynamo.mark_dynamic(x, 0)  # before the first call, for a varying batch",
            "Or torch.compile(fn, dynamic=True). If it recompiles for every size, a Python "
            "loop or branch over the size specialises the graph: vectorise it.",
        ]
    if _MODE_GUARD.search(text):
        steps.append(
            "Keep one mode per compiled function: compile separate twins for training and "
            "eval (or with and without grad)."
        )
    if limit_hit:
        steps.append(
            f"torch._dynamo.config.recompile_limit = {limit}  # raise it only if the variants "
            "are few and expected; fix the guard first"
        )
    steps.append('TORCH_LOGS="recompiles" python your_script.py  # every guard that fails')
    return steps


# --- compiled-path-not-exercised ---------------------------------------------------------------


def compiled_path_not_exercised(entry_point: str, capture: Any) -> Finding | None:
    """An entry point whose timed call ran no compiled code."""
    if not isinstance(capture, Mapping) or capture.get("ran_compiled_code") is not False:
        return None
    frames = int(capture.get("frames_compiled") or 0)
    events = capture.get("compiled_region_events")
    evidence = {
        "entry_point": entry_point,
        "frames_compiled": frames,
        "graphs_captured": int(capture.get("graphs_captured") or 0),
        "compiled_region_events": events,
    }
    if frames == 0:
        cause = (
            f"Dynamo compiled no frame while the compiled {entry_point} call ran: the call "
            "never entered compiled code (`torch.compile(policy)` compiles `forward`, and "
            "`select_action` does not call it), so its figures compare eager with eager."
        )
    else:
        cause = (
            f"Frames were compiled, but a warm {entry_point} call emitted no "
            "'Torch-Compiled Region' event: the timed call ran eager code only."
        )
    return make_finding(
        COMPILED_PATH_NOT_EXERCISED,
        confidence="high",
        cause=cause,
        evidence=evidence,
        next_steps=[
            "policy_c = copy.deepcopy(policy)",
            "policy_c.model.compile()  # or: policy_c.select_action = "
            "torch.compile(policy_c.select_action)",
            "Check that compiled code runs: torch._dynamo.utils.counters['frames'] grows on "
            "the first call.",
        ],
    )


def first_call_compiled_nothing(entry_point: str, report: Any) -> Finding | None:
    """The recompile scenarios' compiled copy compiled no frame on its first call."""
    if not isinstance(report, Mapping) or report.get("first_call_frames") != 0:
        return None
    function = report.get("function")
    return make_finding(
        COMPILED_PATH_NOT_EXERCISED,
        confidence="high",
        cause=f"Dynamo compiled no frame on the compiled copy's first {entry_point} call "
        f"({function}): what was compiled is not on the path the call takes, so it runs eager "
        "code only, and no scenario can recompile it.",
        evidence={"entry_point": entry_point, "function": function, "frames_compiled": 0},
        next_steps=[
            "Compile the function the call reaches: --compile-how model compiles where the "
            "policy calls its network, --compile-how methods its entry points.",
            "Check that compiled code runs: torch._dynamo.utils.counters['frames'] grows on "
            "the first call.",
        ],
    )


def compilation_failed_findings(probes: Mapping[str, Any]) -> list[Finding]:
    benchmark = probes.get(BENCHMARK) or {}
    error = benchmark.get("compilation_error")
    if not error:
        return []
    entry_point = benchmark.get("compile_error_entry_point")
    compile_settings = benchmark.get("compile") or {}
    return [
        make_finding(
            COMPILATION_FAILED,
            confidence="high",
            cause=f"Compiling the {entry_point} entry point raised {error}",
            evidence={
                "entry_point": entry_point,
                "error": error,
                "backend": compile_settings.get("backend"),
                "mode": compile_settings.get("mode"),
                "compile_how": compile_settings.get("how"),
            },
            next_steps=[
                "rerun with --backend aot_eager: if that compiles, the error is Inductor's",
                "TORCH_LOGS=+dynamo,+inductor compile-diagnose ...  # the full compiler log",
                "the graph-break table above still shows what dynamo captured",
            ],
        )
    ]
