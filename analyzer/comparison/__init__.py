"""Two diagnoses compared: what changed, in compile terms (`compile-diagnose compare`).

Pure JSON in, dataclasses out, no torch: `compare(before, after)` reads two recorded diagnoses
(`read_diagnosis`) and returns a `Comparison`: the settings that differ, graph breaks fixed,
added or unchanged, recompiles and their guards, compiled frames and regions, CUDA-graph replays
and skips, each speedup with its range and whether it moved beyond the spread (`speed.py`), the
action and loss differences and fp64 verdicts, and the findings that appeared or disappeared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.comparison.accuracy import accuracy_changes, divergence_verdicts, fp64_changes
from analyzer.comparison.changes import Comparison, RunSide
from analyzer.comparison.compile import figure_changes, graph_break_changes, recompile_changes
from analyzer.comparison.findings import finding_changes
from analyzer.comparison.ranks import rank_figure_changes, with_rank_breaks
from analyzer.comparison.read import read_diagnosis
from analyzer.comparison.speed import MIN_CHANGE, speedup_changes
from analyzer.comparison.targets import setting_changes, target_differences, target_name
from analyzer.errors import UsageError

__all__ = ["Comparison", "DifferentTargets", "compare", "read_diagnosis"]


class DifferentTargets(UsageError):
    """The two diagnoses are of different targets, and the user did not ask to compare anyway."""


def compare(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    before_source: str = "before",
    after_source: str = "after",
    force: bool = False,
    min_change: float = MIN_CHANGE,
) -> Comparison:
    """What changed from `before` to `after` (two recorded diagnoses).

    A speedup is called faster or slower when the two ranges are apart and the medians moved by
    `min_change` (a fraction of BEFORE's) or more. Raises DifferentTargets (one line) when they
    diagnosed different targets, unless `force`.
    """
    differences = target_differences(before, after)
    if differences and not force:
        what = "; ".join(f"{d.name} {_shown(d.before)} vs {_shown(d.after)}" for d in differences)
        raise DifferentTargets(
            f"{before_source} and {after_source} diagnose different targets ({what}): "
            "compare them anyway with --force"
        )
    # A run on several ranks: its ranks' breaks are the training entry point's.
    probes_before = with_rank_breaks(before.get("probes") or {})
    probes_after = with_rank_breaks(after.get("probes") or {})
    findings_before, findings_after = before.get("findings") or [], after.get("findings") or []
    breaks, breaks_missing = graph_break_changes(probes_before, probes_after)
    recompiles, recompiles_missing = recompile_changes(
        probes_before, probes_after, findings_before, findings_after
    )
    speedups, speedups_missing = speedup_changes(probes_before, probes_after, min_change)
    fp64, fp64_missing = fp64_changes(before, after)
    return Comparison(
        before=_side(before, before_source),
        after=_side(after, after_source),
        min_change=min_change,
        forced=bool(differences),
        target_differences=differences,
        settings=setting_changes(before, after),
        graph_breaks=breaks,
        recompiles=recompiles,
        compile_figures=figure_changes(probes_before, probes_after)
        + rank_figure_changes(probes_before, probes_after),
        speedups=speedups,
        accuracy=accuracy_changes(before, after),
        fp64=fp64,
        divergence_verdict=divergence_verdicts(before, after),
        findings=finding_changes(findings_before, findings_after),
        not_compared=breaks_missing + recompiles_missing + speedups_missing + fp64_missing,
    )


def _side(diagnosis: Mapping[str, Any], source: str) -> RunSide:
    return RunSide(
        source=source,
        target=target_name(diagnosis),
        command=str(diagnosis.get("command") or ""),
        status=str(diagnosis.get("status") or ""),
        reference=(diagnosis.get("verdict") or {}).get("reference"),
    )


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return "+".join(str(v) for v in value) or "none"
    return str(value)
