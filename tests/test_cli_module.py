"""`compile-diagnose module FILE.py:FACTORY`: a user's own file, end to end, and bad specs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import run_cli
from custom_models import FILE

QUICK = ["--device", "cpu", "--backend", "aot_eager", "--iters-inference", "3"]
QUICK += ["--iters-training", "2", "--warmup", "1"]

USER_MODEL = """
import torch
from torch import nn

from user_helpers import scale_of


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        h = self.linear(x)
        print("gating")  # PLANTED: print
        return h * scale_of(h)


def make():
    torch.manual_seed(0)
    model = Gated()
    return model, (torch.randn(4, 4),), lambda out: out.pow(2).mean(), (torch.randn(4, 4),)
"""

USER_HELPERS = """
def scale_of(h):
    return h.sigmoid()
"""


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("compile-diagnose")
    return lines[0]


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "user_helpers.py").write_text(textwrap.dedent(USER_HELPERS))
    path = folder / "gated_model.py"
    path.write_text(textwrap.dedent(USER_MODEL))
    return path


def test_a_model_in_the_users_file_gets_its_break_located_there(
    user_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, _, _ = run_cli(["module", f"{user_file}:make", *QUICK, "--out", str(out)], capsys)
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    planted = next(
        i
        for i, line in enumerate(user_file.read_text().splitlines(), start=1)
        if line.endswith("# PLANTED: print")
    )
    assert code in (0, 1)
    for entry_point in ("inference", "training"):
        breaks = diagnosis["probes"]["graph_breaks"][entry_point]["breaks"]
        places = {(b["location"]["filename"], b["location"]["lineno"]) for b in breaks}
        assert (str(user_file), planted) in places, entry_point
    assert diagnosis["reference_metrics"]["training_benchmarked"] is True


def test_a_two_tuple_factory_diagnoses_inference_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        ["module", f"{FILE}:make_shifted", *QUICK, "--out", str(out), "--json"], capsys
    )
    diagnosis = json.loads(stdout)
    assert code in (0, 1)
    assert diagnosis == json.loads((out / "diagnosis.json").read_text())
    assert diagnosis["command"] == "module"
    assert diagnosis["reference_metrics"]["training_benchmarked"] is False
    assert any("no loss_fn" in note for note in diagnosis["notes"])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (f"{FILE}", "give FILE.py:FACTORY"),
        ("/nonexistent/models.py:make", "/nonexistent/models.py: no such file"),
        (f"{FILE}:no_such_factory", "has no function 'no_such_factory'"),
        (f"{FILE}:raises", "raises() raised RuntimeError: no weights here"),
        (f"{FILE}:returns_three", "not a 3-tuple"),
        (f"{FILE}:returns_model_only", "not ScaledRegressor"),
        (f"{FILE}:FILE", "has no function 'FILE'"),
    ],
)
def test_a_bad_spec_is_one_line_and_exit_2(
    spec: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["module", spec, *QUICK, "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert expected in one_error_line(err)


def test_a_file_that_fails_to_import_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken_model.py"
    broken.write_text("import torch\nraise ImportError('needs a package you do not have')\n")
    code, _, err = run_cli(["module", f"{broken}:make", *QUICK], capsys)
    assert code == 2
    assert "needs a package you do not have" in one_error_line(err)


def test_inputs_the_model_fails_on_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong_inputs.py"
    wrong.write_text(
        "import torch\n\ndef make():\n    return torch.nn.Linear(4, 2), (torch.randn(3, 5),)\n"
    )
    code, _, err = run_cli(["module", f"{wrong}:make", *QUICK, "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "fails on its inputs" in one_error_line(err)


def test_a_fresh_process_builds_the_users_model_again_from_the_factory(
    user_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The warm-cache lever calls the factory again in a new interpreter: its loss is a lambda,
    which does not pickle, and its file imports a neighbour."""
    out = tmp_path / "out"
    args = ["module", f"{user_file}:make", *QUICK, "--what-if", "none"]
    code, _, _ = run_cli([*args, "--compile-lever", "warm-cache", "--out", str(out)], capsys)
    assert code in (0, 1)
    section = json.loads((out / "diagnosis.json").read_text())["probes"]["compile_time"]
    levers = {lv["entry_point"]: lv for lv in section["levers"] if lv["name"] == "warm-cache"}
    assert set(levers) == {"inference", "training"}
    for lever in levers.values():
        assert lever["status"] == "measured", lever["reason"]
        assert lever["detail"]["fresh_process"] and lever["detail"]["frames"] >= 1
        assert lever["compile_s"] > 0


def test_autocast_runs_the_training_forward_in_low_precision_on_one_process(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, user_file: Path
) -> None:
    losses = {}
    for autocast in (None, "bfloat16"):
        out = tmp_path / str(autocast)
        args = ["module", f"{user_file}:make", *QUICK, "--probes", "benchmark", "--out", str(out)]
        code, stdout, _ = run_cli([*args, *(["--autocast", autocast] if autocast else [])], capsys)
        assert code in (0, 1)
        benchmark = json.loads((out / "diagnosis.json").read_text())["probes"]["benchmark"]
        assert benchmark["settings"]["autocast"] == autocast
        losses[autocast] = benchmark["training_trace"]["eager_losses"]
    assert "torch.autocast(bfloat16)" in stdout
    # the same weights, batch and steps: only bfloat16's rounding of the forward differs
    assert losses[None] != losses["bfloat16"]
    assert losses[None] == pytest.approx(losses["bfloat16"], rel=0.05)
