"""`compile-diagnose compare` on real diagnoses: a planted `.item()` break, then fixed.

The diagnoses are made here with `diagnose_module` (backend aot_eager, a few timed calls, only
the probes a comparison reads): the model with its break, the same model with the break fixed,
and that fixed model once more, unchanged.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from planted import marker_line
from torch import nn

from analyzer.api import diagnose_module
from analyzer.comparison import DifferentTargets, compare, read_diagnosis
from analyzer.comparison.changes import ADDED, DISAPPEARED, FIXED, UNCHANGED, SpeedupRange
from analyzer.comparison.compile import graph_break_changes
from analyzer.comparison.speed import FASTER, NOISE, SLOWER, speedup_call
from analyzer.diagnosis import DIAGNOSIS_FILE
from probes.records.benchmark import BenchmarkSettings
from probes.records.names import BENCHMARK, DIVERGENCE, GRAPH_BREAKS, RECOMPILES

FILE = Path(__file__).resolve()
PROBES = [GRAPH_BREAKS, BENCHMARK, RECOMPILES, DIVERGENCE]
QUICK = BenchmarkSettings(iters_inference=20, iters_training=10, warmup=3)
WIDTH = 128


class Scaler(nn.Module):
    """A linear layer scaled by its mean magnitude: read as a Python float (the planted break)
    or kept as a tensor (the fix)."""

    def __init__(self, fixed: bool) -> None:
        super().__init__()
        self.fixed = fixed
        self.linear = nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        scale = y.abs().mean()
        if not self.fixed:
            scale = scale.item()  # PLANTED: compare-item
        return torch.relu(y) * scale


def loss(out: torch.Tensor) -> torch.Tensor:
    return out.pow(2).mean()


def diagnose(out: Path, *, fixed: bool, with_loss: bool = True, probes=PROBES) -> Path:
    torch.manual_seed(0)
    diagnose_module(
        Scaler(fixed),
        (torch.randn(32, WIDTH),),
        loss_fn=loss if with_loss else None,
        backend="aot_eager",
        probes=probes,
        benchmark=QUICK,
        out_dir=out,
    )
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    return {
        "planted": diagnose(root / "planted", fixed=False),
        "fixed": diagnose(root / "fixed", fixed=True),
        "fixed-again": diagnose(root / "fixed-again", fixed=True),
    }


def test_the_planted_break_is_called_fixed_at_its_line(runs: dict[str, Path]) -> None:
    before, after = read_diagnosis(runs["planted"]), read_diagnosis(runs["fixed"])
    comparison = compare(before, after)
    fixed = comparison.breaks_with(FIXED)
    assert {change.entry_point for change in fixed} == {"inference", "training"}
    for change in fixed:
        assert change.location is not None
        assert change.location["filename"] == str(FILE)
        assert change.location["lineno"] == marker_line(FILE, "compare-item")
        assert change.gb_id == "GB0124"
        assert (change.hits_before, change.hits_after) == (1, 0)
    assert comparison.breaks_with(ADDED) == comparison.breaks_with(UNCHANGED) == []
    gone = {(c.code, c.entry_point) for c in comparison.findings_with(DISAPPEARED)}
    assert {("CD102", "inference"), ("CD102", "training")} <= gone
    frames = {
        (f.entry_point, f.before, f.after)
        for f in comparison.compile_figures
        if f.name == "frames compiled"
    }
    # The break split each call in two frames; fixed, each call is one.
    assert frames == {("inference", 2, 1), ("training", 2, 1)}
    assert comparison.settings == []  # one process, one machine, the same options


def test_the_command_shows_the_fix_in_every_format(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path, markdown_path = tmp_path / "comparison.json", tmp_path / "comparison.md"
    args = ["compare", str(runs["planted"]), str(runs["fixed"] / DIAGNOSIS_FILE)]
    code, out, err = run_cli(
        [*args, "--json", str(json_path), "--markdown", str(markdown_path)], capsys
    )
    assert code == 0, err
    assert "2 fixed, 0 added, 0 unchanged" in out
    document = json.loads(json_path.read_text())
    assert [b["status"] for b in document["graph_breaks"]] == [FIXED, FIXED]
    assert document["before"]["source"] == str(runs["planted"])
    markdown = markdown_path.read_text()
    line = marker_line(FILE, "compare-item")
    assert f"| inference | fixed | tests/test_compare.py:{line} |" in markdown.replace(
        str(FILE.parent.parent) + "/", ""
    )


def test_the_reverse_adds_the_break_and_the_gate_says_where(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "gate.xml"
    thresholds = "graph-breaks.added>0,graph-breaks.fixed>0"
    args = ["compare", str(runs["fixed"]), str(runs["planted"]), "--fail-on", thresholds]
    code, _, err = run_cli([*args, "--junit", str(junit)], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = marker_line(FILE, "compare-item")
    assert lines[0].startswith("compile-diagnose: fail-on graph-breaks.added>0: measured 1: ")
    assert f"{FILE.name}:{line} GB0124 (inference, training)" in lines[0]
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert [case.get("name") for case in cases] == thresholds.split(",")
    added, fixed = cases
    assert "measured 1" in added.find("failure").get("message")
    assert fixed.find("failure") is None


def test_two_runs_of_one_unchanged_model_change_no_compile_figure(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Whether their speedups are called noise depends on the load on the machine between the
    # runs (a timed test has no speed target): the calls are tested on recorded numbers below.
    comparison = compare(read_diagnosis(runs["fixed"]), read_diagnosis(runs["fixed-again"]))
    assert [s.entry_point for s in comparison.speedups] == ["inference", "training"]
    assert all(s.call in (NOISE, FASTER, SLOWER) for s in comparison.speedups)
    assert comparison.speedups[0].before != comparison.speedups[0].after  # two measurements
    assert comparison.graph_breaks == []
    assert all(f.before == f.after for f in comparison.compile_figures if f.unit == "count")
    thresholds = "graph-breaks.change!=0,recompiles.added>0,findings.appeared>0"
    args = ["compare", str(runs["fixed"]), str(runs["fixed-again"]), "--fail-on", thresholds]
    code, out, err = run_cli([*args, "--json"], capsys)
    assert code == 0, err
    assert err.strip() == "compile-diagnose: fail-on (--fail-on): 3 of 3 thresholds hold"
    assert json.loads(out)["gate"]["passed"] is True


def _timed(diagnosis: Path, speedup: tuple[float, float, float], out: Path) -> Path:
    """The recorded diagnosis with its training speedup set to (median, low, high)."""
    document = read_diagnosis(diagnosis)
    recorded = document["probes"][BENCHMARK]["timings"]["training"]["speedup"]
    recorded.update(zip(("ratio", "low", "high"), speedup, strict=True))
    out.write_text(json.dumps(document))
    return out


def test_a_small_move_beyond_the_ranges_is_noise_until_the_minimum_change_is_lowered(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _timed(runs["fixed"], (1.30, 1.27, 1.33), tmp_path / "before.json")
    # Apart from BEFORE's range, 7.7 % below its median; then 31 % below.
    slower = _timed(runs["fixed"], (1.20, 1.18, 1.22), tmp_path / "slower.json")
    much_slower = _timed(runs["fixed"], (0.90, 0.88, 0.92), tmp_path / "much-slower.json")
    gate = ["--fail-on", "speedup.training.regressed"]
    markdown = tmp_path / "comparison.md"
    args = ["compare", str(before), str(slower), *gate, "--markdown", str(markdown)]
    code, out, err = run_cli([*args, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["speedups"][1]["call"] == NOISE
    assert "noise (the ranges are apart, the median moved under 10.0 %)" in markdown.read_text()
    code, out, err = run_cli([*args, "--min-change", "5%", "--json"], capsys)
    assert code == 1
    assert json.loads(out)["speedups"][1]["call"] == SLOWER
    assert err.startswith("compile-diagnose: fail-on speedup.training.regressed: measured ")
    assert err.strip().endswith("1.30x (1.27–1.33x) -> 1.20x (1.18–1.22x): slower")
    code, _, err = run_cli(["compare", str(before), str(much_slower), *gate], capsys)
    assert code == 1 and err.strip().endswith(": slower")


@pytest.mark.parametrize("text", ["-1", "100", "ten"])
def test_a_bad_minimum_change_is_a_usage_error(
    runs: dict[str, Path], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        ["compare", str(runs["fixed"]), str(runs["fixed"]), "--min-change", text], capsys
    )
    assert code == 2 and "--min-change" in err


def test_diagnoses_of_different_targets_are_refused_unless_forced(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same class without a loss: an inference-only target.
    inference_only = diagnose(
        tmp_path / "no-loss", fixed=True, with_loss=False, probes=[GRAPH_BREAKS]
    )
    with pytest.raises(
        DifferentTargets, match=re.escape("entry points inference+training vs inference")
    ):
        compare(read_diagnosis(runs["fixed"]), read_diagnosis(inference_only))
    code, _, err = run_cli(["compare", str(runs["fixed"]), str(inference_only)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--force" in err
    code, out, _ = run_cli(["compare", str(runs["fixed"]), str(inference_only), "--force"], capsys)
    assert code == 0
    assert "Compared with --force although the targets differ" in out
    # Another module class altogether.
    other = read_diagnosis(runs["fixed"])
    other["target"]["module"] = "elsewhere.OtherNet"
    with pytest.raises(
        DifferentTargets, match=re.escape("module test_compare.Scaler vs elsewhere.OtherNet")
    ):
        compare(read_diagnosis(runs["fixed"]), other)


def _break(filename: str, lineno: int, gb_id: str) -> dict:
    location = {"filename": filename, "lineno": lineno, "function": "forward", "code": "s.item()"}
    return {
        "reason": "Tensor.item()",
        "category": "scalar-read",
        "hits": 1,
        "gb_id": gb_id,
        "location": location,
    }


def _graph_breaks(*breaks: dict) -> dict:
    return {GRAPH_BREAKS: {"inference": {"breaks": list(breaks)}}}


def test_a_break_whose_line_moved_is_the_same_break_and_another_gb_id_is_not() -> None:
    moved, _ = graph_break_changes(
        _graph_breaks(_break("/ci/a/model.py", 10, "GB0124")),
        _graph_breaks(_break("/ci/b/model.py", 13, "GB0124")),
    )
    assert [c.status for c in moved] == [UNCHANGED]
    other_kind, _ = graph_break_changes(
        _graph_breaks(_break("/ci/a/model.py", 10, "GB0124")),
        _graph_breaks(_break("/ci/a/model.py", 10, "GB0059")),
    )
    assert sorted((c.status, c.gb_id) for c in other_kind) == [
        (ADDED, "GB0059"),
        (FIXED, "GB0124"),
    ]


def test_a_side_without_a_section_is_not_compared_rather_than_fixed() -> None:
    changes, missing = graph_break_changes(_graph_breaks(_break("m.py", 1, "GB0124")), {})
    assert changes == []
    assert [(m.what, m.which, m.missing_in) for m in missing] == [
        ("graph breaks", "inference", "after")
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "a folder without diagnosis.json"),
        ("{not json", "not JSON"),
        ('{"probes": {}}', "not a compile-diagnose diagnosis"),
    ],
)
def test_what_is_not_a_diagnosis_is_one_line_and_exit_2(
    content: str | None, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run"
    path.mkdir()
    if content is not None:
        path = path / DIAGNOSIS_FILE
        path.write_text(content)
    code, _, err = run_cli(["compare", str(path), str(path)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and expected in err


@pytest.mark.parametrize(
    ("before", "after", "min_change", "call"),
    [
        ((1.30, 1.20, 1.40), (1.35, 1.25, 1.45), 0.0, NOISE),  # each median in the other's range
        ((1.30, 1.25, 1.32), (1.36, 1.31, 1.40), 0.0, NOISE),  # medians outside, ranges touch
        ((1.30, 1.20, 1.40), (1.60, 1.45, 1.70), 0.1, FASTER),  # after's worst above before's best
        ((1.30, 1.20, 1.40), (1.00, 0.90, 1.15), 0.1, SLOWER),  # after's best below before's worst
        ((1.30, 1.27, 1.33), (1.20, 1.18, 1.22), 0.1, NOISE),  # apart, but 7.7 % under 10 %
        ((1.30, 1.27, 1.33), (1.20, 1.18, 1.22), 0.05, SLOWER),  # the same, over 5 %
        ((1.30, 1.27, 1.33), (1.40, 1.38, 1.42), 0.05, FASTER),
        ((1.30, None, None), (1.60, 1.45, 1.70), 0.1, None),  # no range recorded: no call
    ],
)
def test_a_change_is_noise_until_the_ranges_are_apart_and_the_median_moved_enough(
    before: tuple, after: tuple, min_change: float, call: str | None
) -> None:
    assert speedup_call(SpeedupRange(*before), SpeedupRange(*after), min_change) == call


def test_compile_options_set_by_environment_or_code_are_settings_that_differ(monkeypatch):
    # `TORCHDYNAMO_CAPTURE_SCALAR_OUTPUTS=1 compile-diagnose ...` removes an .item() break: the
    # comparison must name it first, so the environment records torch's variables and configs
    import torch._dynamo.config as dynamo_config

    from analyzer.comparison.targets import setting_changes
    from probes.environment import current_environment
    from probes.records.serialize import to_jsonable

    before = {"environment": to_jsonable(current_environment(torch.device("cpu")))}
    monkeypatch.setenv("TORCHDYNAMO_CAPTURE_SCALAR_OUTPUTS", "1")
    limit = dynamo_config.recompile_limit + 8
    with dynamo_config.patch(recompile_limit=limit):
        after = {"environment": to_jsonable(current_environment(torch.device("cpu")))}
    assert dynamo_config.recompile_limit == limit - 8  # the patch is undone
    changed = {c.name: (c.before, c.after) for c in setting_changes(before, after)}
    assert changed["env.TORCHDYNAMO_CAPTURE_SCALAR_OUTPUTS"] == (None, "1")
    assert changed["config.dynamo.recompile_limit"] == (None, limit)
