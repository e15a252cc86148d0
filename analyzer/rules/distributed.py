"""Rules over a diagnosis on several processes: ranks that disagree, wait, or fail.

Reads `probes["distributed"]`, the merged `probes.records.distributed.DistributedSection`: each
rank's record as it wrote it (`ranks`) and how each process ended (`outcomes`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.findings import Finding, Rule, Severity, code_block, make_finding, prose
from analyzer.format import count, ms, percent, plural, seconds, short_path, times
from probes.records.distributed import (
    BREAK_IN_ACCELERATE,
    BREAK_IN_DDP,
    BREAK_IN_USER,
    COMPILE,
    COMPLETE,
    DISTRIBUTED,
    EXPOSED_COMM_FRACTION,
    FAILED,
    FIRST_BUCKET_ASSERTION,
    FRAMEWORK_ORIGINS,
    HUNG,
    STEPS,
    STRAGGLER_MIN_S,
    STRAGGLER_RATIO,
)
from probes.records.location import SourceLocation
from probes.records.serialize import as_number
from probes.records.timing import MIN_CHANGE

# --- the rules of this family, documented beside their checks --------------------

RANK_DIVERGENT_COMPILE = Rule(
    code="CD801",
    name="rank-divergent-compile",
    title="Ranks compiled different graphs or recompiled at different times",
    default_severity=Severity.ERROR,
    what_it_does=prose(
        "Compares what each rank compiled during the same training steps: the frames, their",
        "op counts and the guards that made a rank recompile. Flags ranks whose lists differ,",
        "naming the rank that recompiled and the guard that failed there.",
    ),
    why_it_matters=prose(
        "Under DDP every rank must issue the same collectives in the same order. A rank that",
        "recompiles while the others run their cached graph arrives late at the next",
        "all-reduce (every other rank waits for its compile), and a rank that compiled another",
        "graph may split it into other DDPOptimizer buckets or skip a collective: a hang waiting",
        "to happen. The usual cause is an input that differs by rank (a last batch of another",
        "size, a rank-dependent branch or shape).",
    ),
    example=code_block(
        """
        batch = next(loader)  # rank 1's last batch holds 2 samples, rank 0's 4
        loss = compiled_ddp(batch)  # rank 1 recompiles: size mismatch at index 0
        """
    ),
    use_instead=code_block(
        """
        loader = DataLoader(dataset, batch_size=4, drop_last=True)  # one shape on every rank
        torch._dynamo.mark_dynamic(batch["observation.state"], 0)  # or one dynamic graph
        """
    ),
)

COMPILE_STRAGGLER = Rule(
    code="CD802",
    name="compile-straggler",
    title="One rank compiles much more slowly than the others",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "Sums the seconds each rank's first step spent compiling and flags a rank at",
        f"{STRAGGLER_RATIO}x the fastest rank's or more (and at least {STRAGGLER_MIN_S:g} s",
        "slower).",
    ),
    why_it_matters=prose(
        "The first gradient all-reduce waits for every rank: the slowest compile sets the",
        "start of training for all of them, and with a collective timeout a long enough one",
        "kills the job. A rank compiles longer when it compiles more (other inputs, other",
        "guards), when its Inductor cache is cold while the others' is warm, or when its CPU is",
        "shared with other work.",
    ),
    example=code_block(
        """
        $ torchrun --nproc-per-node 8 train.py  # rank 3 on a node whose cache was wiped
        """
    ),
    use_instead=code_block(
        """
        export TORCHINDUCTOR_CACHE_DIR=/shared/inductor-cache  # one warm cache for every rank
        torch.compiler.load_cache_artifacts(open("artifacts.bin", "rb").read())
        """
    ),
)

COMM_NOT_OVERLAPPED = Rule(
    code="CD803",
    name="comm-not-overlapped",
    title="Gradient communication is not hidden behind compute",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "Reads each rank's profiled steps: the time its collectives (gloo or NCCL) ran, and the",
        "part of it during which nothing else computed. Flags a rank where that exposed",
        f"communication is {percent(EXPOSED_COMM_FRACTION)} of the steps or more.",
    ),
    why_it_matters=prose(
        "DDP starts each bucket's all-reduce as soon as its gradients are ready, so that it runs",
        "while the rest of the backward computes. Communication with nothing beside it is time",
        "every step pays in full: a graph that DDPOptimizer did not split (optimize_ddp off, one",
        "bucket), buckets too large to start early, or find_unused_parameters=True, which walks",
        "the autograd graph after every forward and marks unused parameters ready late.",
    ),
    example=code_block(
        """
        ddp = DDP(model, find_unused_parameters=True, bucket_cap_mb=100)
        """
    ),
    use_instead=code_block(
        """
        ddp = DDP(model, find_unused_parameters=False, bucket_cap_mb=25, static_graph=True)
        # with Accelerate: DistributedDataParallelKwargs(find_unused_parameters=False)
        """
    ),
)

DDP_OPTIMIZER_FIRST_BUCKET = Rule(
    code="CD804",
    name="ddp-optimizer-first-bucket",
    title="DDPOptimizer refused the bucket size: the compile failed on every rank",
    default_severity=Severity.ERROR,
    what_it_does=prose(
        "Flags ranks whose first compile failed in torch's DDPOptimizer with",
        f'"{FIRST_BUCKET_ASSERTION} to get comms warmed up ASAP", with the bucket sizes DDP',
        "was given and the settings that avoid it.",
    ),
    why_it_matters=prose(
        "DDPOptimizer splits the compiled graph at DDP's gradient buckets and takes DDP's first",
        "bucket (1 MiB) as its first; a bucket_cap_mb below that fails its assertion in every",
        "rank before any step runs, as a traceback far from the line that set it.",
    ),
    example=code_block(
        """
        ddp = DDP(model, bucket_cap_mb=0.5)
        torch.compile(ddp)(batch)  # AssertionError: First bucket should be smaller/equal ...
        """
    ),
    use_instead=code_block(
        """
        ddp = DDP(model, bucket_cap_mb=1)  # at least DDP's first bucket (1 MiB)
        # or keep the small buckets and let DDP, not dynamo, split the communication:
        torch._dynamo.config.optimize_ddp = False
        """
    ),
)

RANK_FAILED = Rule(
    code="CD805",
    name="rank-failed",
    title="A rank failed, died or hung",
    default_severity=Severity.ERROR,
    what_it_does=prose(
        "Names the rank that failed first (torchrun's root cause, else the first rank that",
        "did not finish), how it ended (its error, the signal that killed it, or the timeout it",
        "ran past), the phase it was in, what it had measured before, and what became of the",
        "other ranks.",
    ),
    why_it_matters=prose(
        "One rank that stops leaves the others blocked in their next collective until the",
        "launcher or the process-group timeout ends them; the logs then show every rank",
        "failing, and the first failure is easy to miss among the rest.",
    ),
    example=code_block(
        """
        # rank 1 killed (out of memory, SIGKILL) during the warm steps;
        # rank 0: RuntimeError: Connection closed by peer
        """
    ),
    use_instead=code_block(
        """
        $ dmesg | grep -i kill  # what killed the rank
        $ compile-diagnose act --nproc 2 --json | jq '.probes.distributed.ranks[]'
        """
    ),
)

DDP_INTERNAL_BREAKS = Rule(
    code="CD806",
    name="ddp-internal-graph-breaks",
    title="Graph breaks inside DDP's or Accelerate's own code",
    default_severity=Severity.INFO,  # a warning when the measured lever is clearly faster
    what_it_does=prose(
        "Counts the graph breaks each rank met in DDP's code (torch/nn/parallel/distributed.py,",
        "torch/distributed/) or Accelerate's, apart from those in the model. Every rank then",
        "tried the lever: the model compiled before DDP wraps it, the same steps timed; the",
        "finding gives its breaks, first step and warm step against the wrapper's, and is a",
        "warning when every warm step of the trial beat every one of the wrapper's and the",
        "median by 10 % or more.",
    ),
    why_it_matters=prose(
        "`torch.compile(DDP(model))` traces DDP's forward, which breaks the graph in DDP's own",
        "logging and in the context manager around the model's call: each break is an eager",
        "gap and one more compiled frame per step. They are not in your model, and removing",
        "your own breaks will not remove them.",
    ),
    example=code_block(
        """
        model = torch.compile(DDP(model))  # breaks in DDP._pre_forward, _inside_ddp_forward
        """
    ),
    use_instead=code_block(
        """
        model.compile()  # compile the model in place ...
        ddp = DDP(model)  # ... and let DDP's forward run eager around it
        """
    ),
)

RULES: tuple[Rule, ...] = (
    RANK_DIVERGENT_COMPILE,
    COMPILE_STRAGGLER,
    COMM_NOT_OVERLAPPED,
    DDP_OPTIMIZER_FIRST_BUCKET,
    RANK_FAILED,
    DDP_INTERNAL_BREAKS,
)


def check(probes: Mapping[str, Any]) -> list[Finding]:
    section = probes.get(DISTRIBUTED)
    if not section:
        return []
    ranks = [r for r in section.get("ranks") or [] if isinstance(r, Mapping)]
    found = [
        _divergent_compile(ranks),
        _straggler(ranks),
        _comm_not_overlapped(ranks),
        _first_bucket(ranks),
        _rank_failed(ranks, section.get("outcomes") or [], section),
        _internal_breaks(ranks),
    ]
    return [finding for finding in found if finding is not None]


# --- what the ranks compiled -------------------------------------------------------------------


def _signature(rank: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """What a rank compiled, in an order-free form two ranks can be compared by."""
    return sorted(
        (str(c.get("function")), c.get("first_line") or 0, c.get("graph_ops") or 0)
        for c in rank.get("compiles") or []
    )


def _recompiles(rank: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in rank.get("compiles") or [] if c.get("recompile_reason")]


def _divergent_compile(ranks: Sequence[Mapping[str, Any]]) -> Finding | None:
    compared = [r for r in ranks if STEPS in (r.get("phases_done") or [])]
    if len(compared) < 2:
        return None
    reference = compared[0]
    odd = [r for r in compared[1:] if _signature(r) != _signature(reference)]
    if not odd:
        return None
    # the rank that recompiled most is the one to name; else the first that differs
    culprit = max([reference, *odd], key=lambda r: len(_recompiles(r)))
    other = reference if culprit is not reference else odd[0]
    recompiles = _recompiles(culprit)
    guard = _guard_line(recompiles[0]["recompile_reason"]) if recompiles else None
    cause = (
        f"Rank {culprit['rank']} compiled {plural(len(culprit.get('compiles') or []), 'frame')}"
        f" ({plural(len(recompiles), 'recompile')}) where rank {other['rank']} compiled "
        f"{len(other.get('compiles') or [])} ({plural(len(_recompiles(other)), 'recompile')}) "
        "over the same training steps"
    )
    cause += f"; the guard that failed on rank {culprit['rank']}: {guard}." if guard else "."
    return make_finding(
        RANK_DIVERGENT_COMPILE,
        confidence="high",
        cause=cause,
        evidence={
            "ranks_compared_count": len(compared),
            "divergent_ranks": [r["rank"] for r in odd],
            **{f"rank{r['rank']}_compiles_count": len(r.get("compiles") or []) for r in compared},
            **{f"rank{r['rank']}_recompiles_count": len(_recompiles(r)) for r in compared},
        },
        location=_compile_location(recompiles[0]) if recompiles else None,
        next_steps=[
            "give every rank the same input shapes (drop_last=True), or mark the varying size "
            "dynamic: torch._dynamo.mark_dynamic(tensor, dim)",
            'TORCH_LOGS="recompiles" torchrun --nproc-per-node N your_train.py',
        ],
    )


def _guard_line(reason: Any) -> str:
    """The failed guard itself: the first line of dynamo's reason, without its source comment."""
    return str(reason).strip().splitlines()[0].split("#")[0].strip()


def _compile_location(compile_record: Mapping[str, Any]) -> SourceLocation | None:
    filename = compile_record.get("filename")
    if not filename:
        return None
    return SourceLocation(
        str(filename), int(compile_record.get("first_line") or 0), str(compile_record["function"])
    )


def _compile_s(rank: Mapping[str, Any]) -> float | None:
    phase = [c for c in rank.get("compiles") or [] if c.get("phase") == COMPILE]
    if not phase:
        return None
    return sum(as_number(c.get("seconds")) or 0.0 for c in phase)


def _straggler(ranks: Sequence[Mapping[str, Any]]) -> Finding | None:
    timed = [(r, _compile_s(r)) for r in ranks]
    timed = [(r, s) for r, s in timed if s is not None and s > 0]
    if len(timed) < 2:
        return None
    slow, slow_s = max(timed, key=lambda t: t[1])
    fast, fast_s = min(timed, key=lambda t: t[1])
    if slow_s < STRAGGLER_RATIO * fast_s or slow_s - fast_s < STRAGGLER_MIN_S:
        return None
    waited = as_number(fast.get("first_step_s"))
    cause = (
        f"Rank {slow['rank']} spent {seconds(slow_s)} compiling its first step, "
        f"{times(slow_s / fast_s)} rank {fast['rank']}'s {seconds(fast_s)}: the first gradient "
        f"all-reduce waits for it on every rank"
    )
    if waited is not None:
        cause += f" (rank {fast['rank']}'s first step took {seconds(waited)} in all)"
    return make_finding(
        COMPILE_STRAGGLER,
        confidence="medium",
        cause=cause + ".",
        evidence={
            "slow_rank": slow["rank"],
            "fast_rank": fast["rank"],
            "slow_compile_s": slow_s,
            "fast_compile_s": fast_s,
            "ratio_x": slow_s / fast_s,
        },
        next_steps=[
            "share one Inductor cache between the ranks: TORCHINDUCTOR_CACHE_DIR=/shared/cache",
            "compare the ranks' frames: tlparse's multi-rank report (tlparse_ranks/index.html)",
        ],
    )


# --- communication -------------------------------------------------------------------------------


def _exposed_fraction(rank: Mapping[str, Any]) -> float | None:
    comm = rank.get("comm") or {}
    window, exposed = as_number(comm.get("window_ms")), as_number(comm.get("exposed_comm_ms"))
    if not window or exposed is None:
        return None
    return exposed / window


def _comm_not_overlapped(ranks: Sequence[Mapping[str, Any]]) -> Finding | None:
    measured = [(r, _exposed_fraction(r)) for r in ranks]
    measured = [(r, f) for r, f in measured if f is not None]
    if not measured:
        return None
    worst, fraction = max(measured, key=lambda t: t[1])
    if fraction < EXPOSED_COMM_FRACTION:
        return None
    comm = worst["comm"]
    settings = worst.get("settings") or {}
    steps = int(as_number(comm.get("steps")) or 1)
    cause = (
        f"On rank {worst['rank']}, the collectives ran {ms(comm.get('comm_ms'))} over "
        f"{plural(steps, 'profiled step')} ({ms(comm.get('window_ms'))}), "
        f"{ms(comm.get('exposed_comm_ms'))} of it ({percent(fraction)} of the steps) with no "
        f"compute beside it; {count(comm.get('collectives'))} collective calls"
    )
    splits = worst.get("splits") or []
    buckets = max((len(s.get("bucket_bytes") or []) for s in splits), default=1)
    cause += f", the compiled graph cut into {plural(buckets, 'bucket')} by DDPOptimizer"
    if settings.get("find_unused_parameters"):
        cause += ", with find_unused_parameters=True"
    next_steps = []
    if settings.get("find_unused_parameters"):
        next_steps.append(
            "DDP(model, find_unused_parameters=False) where every parameter gets a gradient "
            "(Accelerate: DistributedDataParallelKwargs(find_unused_parameters=False))"
        )
    next_steps.append("a smaller bucket_cap_mb starts the first all-reduce earlier")
    return make_finding(
        COMM_NOT_OVERLAPPED,
        confidence="medium",
        cause=cause + ".",
        evidence={
            "rank": worst["rank"],
            "comm_ms": comm.get("comm_ms"),
            "exposed_comm_ms": comm.get("exposed_comm_ms"),
            "window_ms": comm.get("window_ms"),
            "exposed_fraction_x": fraction,
            "buckets_count": buckets,
        },
        impact_ms=(as_number(comm.get("exposed_comm_ms")) or 0.0) / steps,
        next_steps=next_steps,
    )


# --- failures ------------------------------------------------------------------------------------


def _first_bucket(ranks: Sequence[Mapping[str, Any]]) -> Finding | None:
    hit = [r for r in ranks if FIRST_BUCKET_ASSERTION in str(r.get("error") or "")]
    if not hit:
        return None
    rank = hit[0]
    cap, first = rank.get("bucket_cap_bytes"), rank.get("first_bucket_cap_bytes")
    bucket_mb = (rank.get("settings") or {}).get("bucket_cap_mb")
    cause = (
        f"{plural(len(hit), 'rank')} of {len(ranks)} failed in DDPOptimizer during "
        f"{rank.get('error_phase') or 'the first step'}: "
    )
    if cap is not None and first is not None:
        cause += (
            f"DDP's buckets of {count(cap)} bytes (bucket_cap_mb={bucket_mb}) are smaller than "
            f"its first bucket of {count(first)} bytes, which DDPOptimizer refuses"
        )
    else:
        cause += "the bucket size is smaller than DDP's first bucket"
    first_mb = (as_number(first) or 2**20) / 2**20
    return make_finding(
        DDP_OPTIMIZER_FIRST_BUCKET,
        confidence="high",
        cause=f"{cause} ({rank.get('error')}).",
        evidence={
            "failed_ranks": [r["rank"] for r in hit],
            "bucket_cap_bytes": cap,
            "first_bucket_cap_bytes": first,
        },
        next_steps=[
            f"DDP(model, bucket_cap_mb={first_mb:g}) or more (Accelerate: "
            f"DistributedDataParallelKwargs(bucket_cap_mb={first_mb:g}))",
            "torch._dynamo.config.optimize_ddp = False  # no split: one all-reduce after backward",
            'torch._dynamo.config.optimize_ddp = "python_reducer"  # compiled autograd reducer',
        ],
    )


def _is_first_bucket_failure(rank: Mapping[str, Any]) -> bool:
    return FIRST_BUCKET_ASSERTION in str(rank.get("error") or "")


def _first_failed(
    unfinished: Sequence[Mapping[str, Any]], outcomes: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any]:
    root = next((o["rank"] for o in outcomes if o.get("first_failure")), None)
    by_rank = {r["rank"]: r for r in unfinished}
    if root in by_rank:
        return by_rank[root]
    return unfinished[0]


def _ending(rank: Mapping[str, Any], outcomes: Sequence[Mapping[str, Any]]) -> str:
    """How a rank ended, in a few words, from its record and the launcher's outcome."""
    outcome = next((o for o in outcomes if o.get("rank") == rank["rank"]), {})
    status = str(rank.get("status"))
    how = status
    if outcome.get("signal"):
        how += f" ({outcome['signal']}, exit code {outcome.get('exit_code')})"
    elif outcome.get("exit_code") is not None:
        how += f" (exit code {outcome['exit_code']})"
    if rank.get("error"):
        how += f": {rank['error']}"
    phase = rank.get("error_phase") or rank.get("phase")
    return f"{how} during {phase}" if phase else how


def _measured(rank: Mapping[str, Any]) -> str:
    """What a rank had measured before it stopped, from its record."""
    done = rank.get("phases_done") or []
    parts = [f"phases done: {', '.join(done) if done else 'none'}"]
    if as_number(rank.get("first_step_s")) is not None:
        parts.append(f"first (compiling) step {seconds(rank['first_step_s'])}")
    if rank.get("step_ms"):
        parts.append(plural(len(rank["step_ms"]), "warm step"))
    if rank.get("compiles"):
        parts.append(plural(len(rank["compiles"]), "compiled frame"))
    return "; ".join(parts)


def _rank_failed(
    ranks: Sequence[Mapping[str, Any]],
    outcomes: Sequence[Mapping[str, Any]],
    section: Mapping[str, Any],
) -> Finding | None:
    unfinished = [r for r in ranks if r.get("status") != COMPLETE]
    if not unfinished or all(_is_first_bucket_failure(r) for r in unfinished):
        return None
    first = _first_failed(unfinished, outcomes)
    cause = f"Rank {first['rank']} {_ending(first, outcomes)} ({_measured(first)})"
    others = [r for r in unfinished if r is not first]
    if others:
        cause += "; then " + "; ".join(
            f"rank {r['rank']} {_ending(r, outcomes)} ({_measured(r)})" for r in others
        )
    if any(r.get("status") == HUNG for r in unfinished):
        cause += f"; the launch was stopped at its timeout of {seconds(section.get('timeout_s'))}"
    return make_finding(
        RANK_FAILED,
        confidence="high" if first.get("status") in (FAILED, HUNG) else "medium",
        cause=cause + ".",
        evidence={
            "first_failed_rank": first["rank"],
            "statuses": {str(r["rank"]): r.get("status") for r in ranks},
            "completed_ranks_count": len(ranks) - len(unfinished),
        },
        next_steps=[
            f"read rank {first['rank']}'s record: ranks/rank{first['rank']}.json, and "
            "torchrun's log: ranks/torchrun.log",
        ],
    )


def _internal_breaks(ranks: Sequence[Mapping[str, Any]]) -> Finding | None:
    rank = next((r for r in ranks if r.get("breaks")), None)
    if rank is None:
        return None
    breaks = rank["breaks"]
    internal = [b for b in breaks if b.get("origin") in (BREAK_IN_DDP, BREAK_IN_ACCELERATE)]
    if not internal:
        return None
    users = [b for b in breaks if b.get("origin") == BREAK_IN_USER]
    trial = _inside_ddp_trial(rank)
    places = ", ".join(
        f"{b.get('gb_id') or b.get('reason')} at "
        f"{short_path(str((b.get('location') or {}).get('filename', '')))}:"
        f"{(b.get('location') or {}).get('lineno')}"
        for b in internal
    )
    return make_finding(
        DDP_INTERNAL_BREAKS,
        # Measured faster beyond noise: worth acting on.
        severity=Severity.WARNING if trial and trial.clearly_faster else Severity.INFO,
        confidence="high",
        cause=(
            f"Rank {rank['rank']} met {plural(len(internal), 'distinct graph break')} in DDP's "
            f"or Accelerate's own code ({places}) and {len(users)} in the model's."
            + (trial.sentence if trial else "")
        ),
        evidence={
            "rank": rank["rank"],
            "internal_breaks_count": len(internal),
            "model_breaks_count": len(users),
            **(trial.evidence if trial else {}),
        },
        impact_ms=trial.saved_ms if trial else None,
        next_steps=[
            "model.compile(); ddp = DDP(model)  # DDP's forward stays eager",
            "diagnose that setup: the same command with --ddp-compile model --out OTHER, then "
            "compile-diagnose compare the two folders (breaks, first and warm step, frames, "
            "communication)",
        ],
    )


@dataclass(frozen=True)
class _Trial:
    """A rank's inside-DDP trial against its wrapper run, in words and figures."""

    sentence: str
    evidence: dict[str, Any]
    saved_ms: float | None  # per warm step; None where the trial was not faster
    # every warm step faster than every one of the wrapper's, the median by MIN_CHANGE or more
    clearly_faster: bool = False


def _inside_ddp_trial(rank: Mapping[str, Any]) -> _Trial | None:
    trial = rank.get("inside_ddp")
    if not trial:
        return None
    if trial.get("error"):
        sentence = (
            f" Compiled before DDP wrapped it ({trial.get('how')}), it failed: {trial['error']}"
        )
        return _Trial(sentence, {"inside_ddp_error": trial["error"]}, saved_ms=None)
    wrapper, inside = _median(rank.get("step_ms")), _median(trial.get("step_ms"))
    if wrapper is None or inside is None:
        return None
    inside_breaks = trial.get("breaks") or []
    framework = [b for b in inside_breaks if b.get("origin") in FRAMEWORK_ORIGINS]
    sentence = (
        f" Compiled before DDP wrapped it ({trial.get('how')}), the same rank met "
        f"{plural(len(inside_breaks), 'break')} ({len(framework)} in DDP's or Accelerate's "
        f"code); its first, compiling step took {seconds(trial.get('first_step_s'))} against "
        f"the wrapper's {seconds(rank.get('first_step_s'))}, and its warm step {ms(inside)} "
        f"against {ms(wrapper)} ({times(wrapper / inside)} as fast; medians of "
        f"{len(trial.get('step_ms') or [])} steps each)."
    )
    evidence = {
        "inside_ddp_how": trial.get("how"),
        "inside_ddp_breaks_count": len(inside_breaks),
        "wrapper_step_ms": wrapper,
        "inside_ddp_step_ms": inside,
        "inside_ddp_first_step_s": trial.get("first_step_s"),
    }
    clearly_faster = max(trial["step_ms"]) < min(rank["step_ms"]) and (
        inside <= wrapper * (1 - MIN_CHANGE)
    )
    saved = wrapper - inside if inside < wrapper else None
    return _Trial(sentence, evidence, saved, clearly_faster)


def _median(values: Sequence[Any] | None) -> float | None:
    numbers = [n for n in (as_number(v) for v in values or []) if n is not None]
    return statistics.median(numbers) if numbers else None
