"""The CI gate: `--fail-on` thresholds, `[tool.compile-diagnose]` in pyproject.toml, `--junit`.

Thresholds are read on a recorded diagnosis (the tiny ACT fixture, which breaks in training at
its `.item()`), through `compare` on copies of it, and once end to end on a real
`compile-diagnose module` run whose thresholds come from the project's pyproject.toml.
"""

from __future__ import annotations

import copy
import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import run_cli
from planted import marker_line

from analyzer.comparison import compare
from analyzer.errors import UsageError
from analyzer.gate import check_diagnosis, gate_for_comparison, gate_for_diagnosis
from analyzer.gate.measure import measure, measure_comparison
from analyzer.gate.thresholds import FIGURES, parse_thresholds
from analyzer.render.gate import junit_xml
from probes.records.names import BENCHMARK

FIXTURE = Path(__file__).parent / "fixtures" / "diagnosis_act_tiny_inductor.json"
QUICK = ["--device", "cpu", "--backend", "aot_eager", "--iters-inference", "3"]
QUICK += ["--iters-training", "2", "--warmup", "1", "--what-if", "none", "--compile-lever", "none"]


@pytest.fixture
def act() -> dict:
    return json.loads(FIXTURE.read_text())


def checked(diagnosis: dict, thresholds: str) -> dict:
    """Each threshold's text -> (violated, measured value, detail)."""
    gate = gate_for_diagnosis([thresholds], Path.cwd())
    assert gate is not None
    result = check_diagnosis(gate, diagnosis, "act")
    return {
        c.threshold.text: (c.violated, c.measured.value, c.measured.detail) for c in result.checks
    }


def test_thresholds_read_the_recorded_figures(act: dict) -> None:
    timings = act["probes"][BENCHMARK]["timings"]
    result = checked(
        act,
        "graph-breaks>0, graph-breaks.inference>0, speedup.inference<1.1, "
        "speedup.training.low<=0.5, action-diff>1e-5, CD102, graph-break, fp64, needs-work",
    )
    violated, value, detail = result["graph-breaks>0"]
    assert (violated, value) == (True, 1)
    assert detail == "lerobot/policies/act/modeling_act.py:150 GB0124 (training)"
    assert result["graph-breaks.inference>0"][:2] == (False, 0)
    inference = timings["inference"]["speedup"]["ratio"]
    assert result["speedup.inference<1.1"][:2] == (inference < 1.1, inference)
    low = timings["training"]["speedup"]["low"]
    assert result["speedup.training.low<=0.5"][:2] == (low <= 0.5, low)
    action = act["probes"][BENCHMARK]["action_diff"]
    assert result["action-diff>1e-5"][:2] == (action > 1e-5, action)
    assert result["CD102"][0] is result["graph-break"][0] is True  # by code or by name
    assert result["fp64"][0] is False  # no scenario without random numbers fails
    assert result["needs-work"][0] is (act["verdict"]["reference"] != "SUCCESS")


def test_a_figure_the_run_did_not_measure_fails_the_gate(act: dict) -> None:
    del act["probes"][BENCHMARK]
    violated, value, _ = checked(act, "speedup.inference<1.1")["speedup.inference<1.1"]
    assert (violated, value) == (True, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("graph-breaks", "is a figure: say when it fails, e.g. graph-breaks>0"),
        ("error>0", "error is a yes/no check: write it alone"),
        ("speedup<1.1", "unknown figure 'speedup'"),
        ("CD999", "unknown figure 'CD999'"),
        ("graph-breaks>many", "'many' is not a number"),
        ("graph-breaks=>0", "cannot read 'graph-breaks=>0'"),
        ("graph-breaks>0,,error", "an empty threshold"),
        ("graph-breaks.added.change>0", "graph-breaks.added compares already"),
    ],
)
def test_a_bad_threshold_is_a_usage_error(text: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected.replace("(", r"\(")):
        parse_thresholds([text])


def test_a_comparison_threshold_is_refused_for_one_diagnosis_and_read_for_two() -> None:
    with pytest.raises(UsageError, match="compares two diagnoses: use it with compile-diagnose"):
        gate_for_diagnosis(["graph-breaks.added>0"], Path.cwd())
    gate = gate_for_comparison(["graph-breaks.added>0,speedup.training.change<-0.1"], Path.cwd())
    assert gate is not None
    assert [t.comparison for t in gate.thresholds] == [True, True]


def test_the_junit_file_parses_back_with_the_measured_values(act: dict) -> None:
    gate = gate_for_diagnosis(["graph-breaks>0,graph-breaks.inference>0"], Path.cwd())
    assert gate is not None
    root = ET.fromstring(junit_xml([check_diagnosis(gate, act, "act")]))
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "compile-diagnose fail-on: act"
    failing, passing = suite.findall("testcase")
    assert failing.get("name") == "graph-breaks>0"
    failure = failing.find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "measured 1: lerobot/policies/act/modeling_act.py:150 GB0124 (training)"
    )
    assert passing.find("failure") is None
    assert passing.findtext("system-out") == "measured 0"


def write_pyproject(folder: Path, table: str) -> None:
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "user-project"\n\n[tool.compile-diagnose]\n' + textwrap.dedent(table)
    )


def test_compare_reads_both_lists_of_the_pyproject_and_the_command_line_wins(
    act: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    before.write_text(json.dumps(act))
    slower = copy.deepcopy(act)
    slower["probes"][BENCHMARK]["timings"]["training"]["speedup"] = {
        "ratio": 0.5,
        "low": 0.45,
        "high": 0.55,
    }
    after.write_text(json.dumps(slower))
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    write_pyproject(
        project,
        """
        fail-on = ["graph-breaks>0"]
        compare-fail-on = ["graph-breaks.added>0", "speedup.training.regressed"]
        """,
    )
    monkeypatch.chdir(project / "src")  # found from a subfolder, as ruff and pytest find theirs
    code, _, err = run_cli(["compare", str(before), str(after)], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "fail-on graph-breaks>0",
        "fail-on speedup.training.regressed",
    ]
    assert "-> 0.50x (0.45–0.55x): slower" in lines[1]
    code, _, err = run_cli(
        ["compare", str(before), str(after), "--fail-on", "graph-breaks.added>0"], capsys
    )
    assert (code, err.strip()) == (
        0,
        "compile-diagnose: fail-on (--fail-on): 1 of 1 thresholds hold",
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('fail-on = ["graph-breaks.added>0"]', "put it under compare-fail-on"),
        ('fail_on = ["error"]', "unknown key fail_on (known: fail-on, compare-fail-on)"),
        ("fail-on = [1]", "must be a list of strings"),
        ('fail-on = ["error"', "not valid TOML"),
    ],
)
def test_a_bad_pyproject_table_stops_a_diagnosis_in_one_line(
    table: str,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_pyproject(tmp_path, table)
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model.py"
    model.write_text(USER_MODEL)
    code, _, err = run_cli(["module", f"{model}:make", *QUICK, "--out", "out"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and expected in err
    assert not (tmp_path / "out").exists()  # refused before the output folder was made


def test_a_bad_fail_on_is_refused_as_the_line_is_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.py"
    model.write_text(USER_MODEL)
    for threshold in ("graph-breaks>>0", "graph-breaks.added>0"):
        args = ["module", f"{model}:make", *QUICK, "--out", str(tmp_path / "out")]
        code, _, err = run_cli([*args, "--fail-on", threshold], capsys)
        assert code == 2
        assert len(err.strip().splitlines()) == 1 and "argument --fail-on" in err
    code, _, err = run_cli(["compare", str(FIXTURE), str(FIXTURE), "--junit", "x.xml"], capsys)
    assert (code, len(err.strip().splitlines())) == (2, 1)
    assert "--junit needs thresholds" in err
    assert not (tmp_path / "out").exists()


USER_MODEL = """
import torch
from torch import nn


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        h = self.linear(x)
        print("gating")  # PLANTED: print
        return h * h.sigmoid()


def make():
    torch.manual_seed(0)
    model = Gated()
    return model, (torch.randn(4, 4),), lambda out: out.pow(2).mean(), (torch.randn(4, 4),)
"""


def test_a_diagnosis_fails_on_the_projects_thresholds_with_its_junit_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pyproject(tmp_path, 'fail-on = ["graph-breaks>0", "error"]\n')
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "gated_model.py"
    model.write_text(USER_MODEL)
    line = marker_line(model, "print")
    args = ["module", f"{model}:make", *QUICK, "--out", "out", "--junit", "ci/gate.xml"]
    code, _, err = run_cli(args, capsys)
    diagnosis = json.loads((tmp_path / "out" / "diagnosis.json").read_text())
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith("compile-diagnose: fail-on graph-breaks>0: measured 1: ")
    assert f"gated_model.py:{line} " in lines[0]
    assert lines[0].endswith("(inference, training)")
    suite = ET.parse(tmp_path / "ci" / "gate.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.find("properties/property").get("value") == str(tmp_path / "pyproject.toml")
    failures = {
        case.get("name"): case.find("failure") is not None for case in suite.iter("testcase")
    }
    has_error = any(f["severity"] == "error" for f in diagnosis["findings"])
    assert failures == {"graph-breaks>0": True, "error": has_error}
    assert len(lines) == sum(failures.values())  # one line per violated threshold


def test_every_figure_of_the_vocabulary_reads_a_diagnosis_and_a_comparison(act: dict) -> None:
    comparison = compare(act, act)
    for name, figure in FIGURES.items():
        text = name if figure.check else f"{name}>0"
        (threshold,) = parse_thresholds([text])
        if figure.comparison:
            measured = measure_comparison(comparison, act, act, threshold)
        else:
            measured = measure(act, threshold)
            changed = parse_thresholds([f"{name}.change!=0"]) if not figure.check else []
            for change in changed:  # the same run twice: nothing changed
                assert measure_comparison(comparison, act, act, change).value in (0, None)
        assert isinstance(measured.value, bool) is figure.check, name
