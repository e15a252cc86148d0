"""What changed between two diagnoses: the comparison's records.

`analyzer.comparison.compare` fills a `Comparison` from two recorded diagnoses (plain JSON); the
gate (`analyzer.gate`) reads its figures and the renderers (`analyzer.render.comparison`) show
it. Every figure is as recorded on its side; None is a figure that side did not measure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What became of a graph break or a recompiling guard between BEFORE and AFTER.
FIXED = "fixed"  # in BEFORE, gone in AFTER
ADDED = "added"  # new in AFTER
UNCHANGED = "unchanged"  # in both
# What became of a finding.
APPEARED = "appeared"
DISAPPEARED = "disappeared"
# The two diagnoses, as the comparison names them.
BEFORE = "before"
AFTER = "after"


@dataclass(frozen=True)
class RunSide:
    """One of the two diagnoses, as the comparison names it."""

    source: str  # the path the user gave
    target: str  # what was diagnosed, in words: "act (preset cpu)", "mymodel.Net"
    command: str
    status: str  # complete | interrupted | failed | running
    reference: str | None  # the reference verdict: SUCCESS, NEEDS WORK, UNDECIDED


@dataclass(frozen=True)
class SettingChange:
    """A setting recorded differently by the two runs (a version, a compile option, a field)."""

    name: str  # "torch", "compile.mode", "numerics.float32_matmul_precision", "policy.use_vae"
    before: Any
    after: Any


@dataclass(frozen=True)
class BreakChange:
    """One graph break (one reason at one source line) of one entry point, before and after."""

    entry_point: str
    status: str  # FIXED, ADDED or UNCHANGED
    gb_id: str | None  # torch's id of the break type, when it has one
    reason: str
    category: str
    location: dict[str, Any] | None  # as recorded: {"filename", "lineno", "function", "code"}
    hits_before: int  # graphs that ended there in one call; 0 where the break is absent
    hits_after: int


@dataclass(frozen=True)
class RecompileChange:
    """One failing guard of one recompile scenario, with its recompiles before and after."""

    entry_point: str
    scenario: str
    guard: str
    status: str  # FIXED, ADDED or UNCHANGED
    before: int  # recompiles this guard caused in the scenario
    after: int
    by_design: bool | None  # the rules' reading (CD103's evidence); None where no finding says


@dataclass(frozen=True)
class FigureChange:
    """A compile figure of one entry point: frames, graphs, compiled regions, CUDA graphs, time."""

    name: str  # "frames compiled", "first compiled call", "CUDA-graph replays per call", ...
    entry_point: str
    before: float | None
    after: float | None
    unit: str  # COUNT or SECONDS


COUNT = "count"
SECONDS = "s"


@dataclass(frozen=True)
class SpeedupRange:
    """A recorded speedup over eager: the ratio of medians and the range the spreads allow."""

    ratio: float
    low: float | None  # eager's first quartile over compiled's third
    high: float | None  # eager's third quartile over compiled's first


@dataclass(frozen=True)
class SpeedupChange:
    """One entry point's speedup before and after, and whether it moved beyond the spread."""

    entry_point: str
    before: SpeedupRange | None
    after: SpeedupRange | None
    # analyzer.comparison.speed's NOISE, FASTER or SLOWER; None: a side without a speedup or range
    call: str | None
    eager_ms_before: float | None = None
    eager_ms_after: float | None = None
    compiled_ms_before: float | None = None
    compiled_ms_after: float | None = None

    @property
    def change(self) -> float | None:
        """after - before, of the medians' ratio."""
        if self.before is None or self.after is None:
            return None
        return self.after.ratio - self.before.ratio


@dataclass(frozen=True)
class AccuracyChange:
    """|compiled - eager| of the action or of the loss, and the reference's pass, both runs."""

    name: str  # "action difference", "loss difference"
    before: float | None
    after: float | None
    tolerance_before: float | None
    tolerance_after: float | None
    passed_before: bool | None
    passed_after: bool | None


@dataclass(frozen=True)
class Fp64Change:
    """One divergence scenario's fp64 verdict: compiled as close to fp64 as eager, or not."""

    scenario: str
    entry_point: str
    passed_before: bool | None  # None: it could not run
    passed_after: bool | None


@dataclass(frozen=True)
class FindingChange:
    """A finding one run made and the other did not."""

    status: str  # APPEARED (in AFTER only) or DISAPPEARED (in BEFORE only)
    code: str
    name: str
    title: str
    severity: str
    entry_point: str | None
    location: dict[str, Any] | None
    cause: str


@dataclass(frozen=True)
class NotCompared:
    """A part of the record that one side lacks, so it is compared on neither."""

    what: str  # "graph breaks", "recompiles", "speedup", "fp64 scenario", ...
    which: str  # the entry point, or the scenario: "training", "eval (inference)"
    missing_in: str  # BEFORE or AFTER


@dataclass
class Comparison:
    before: RunSide
    after: RunSide
    min_change: float  # the smallest move of a median speedup called faster or slower (speed.py)
    forced: bool = False  # compared although the targets differ (`--force`)
    target_differences: list[SettingChange] = field(default_factory=list)
    settings: list[SettingChange] = field(default_factory=list)
    graph_breaks: list[BreakChange] = field(default_factory=list)
    recompiles: list[RecompileChange] = field(default_factory=list)
    compile_figures: list[FigureChange] = field(default_factory=list)
    speedups: list[SpeedupChange] = field(default_factory=list)
    accuracy: list[AccuracyChange] = field(default_factory=list)
    fp64: list[Fp64Change] = field(default_factory=list)
    divergence_verdict: tuple[str | None, str | None] | None = None  # the reading, both runs
    findings: list[FindingChange] = field(default_factory=list)
    not_compared: list[NotCompared] = field(default_factory=list)

    def breaks_with(self, status: str) -> list[BreakChange]:
        return [change for change in self.graph_breaks if change.status == status]

    def recompiles_with(self, status: str) -> list[RecompileChange]:
        return [change for change in self.recompiles if change.status == status]

    def findings_with(self, status: str) -> list[FindingChange]:
        return [change for change in self.findings if change.status == status]

    def speedup(self, entry_point: str) -> SpeedupChange | None:
        return next((s for s in self.speedups if s.entry_point == entry_point), None)
