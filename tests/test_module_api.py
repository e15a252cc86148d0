"""`diagnose_module`: the Python API on small models of a user's own (tests/custom_models.py).

Real torch.compile with backend="aot_eager" on the CPU. One full diagnosis is shared by the
tests that read it; the others select only the probes they are about.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from custom_models import (
    FILE,
    ScaledRegressor,
    make_regressor,
    make_regressor_with_loss,
    make_shifted,
    planted_line,
)

from analyzer import diagnose_module
from analyzer.diagnosis import Diagnosis
from analyzer.errors import UsageError
from probes.records.benchmark import BenchmarkSettings
from probes.targets.module import TRAINING_SKIPPED_NOTE

QUICK = BenchmarkSettings(iters_inference=3, iters_training=2, warmup=1)


def quick(model, inputs, **kwargs) -> Diagnosis:
    return diagnose_module(model, inputs, backend="aot_eager", benchmark=QUICK, **kwargs)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Diagnosis, Path]:
    out = tmp_path_factory.mktemp("api-full")
    model, inputs, loss_fn, train_inputs = make_regressor_with_loss()
    diagnosis = quick(model, inputs, loss_fn=loss_fn, train_inputs=train_inputs, out_dir=out)
    return diagnosis, out


def test_graph_break_finding_names_the_users_file_and_line(full) -> None:
    diagnosis, _ = full
    located = [
        f
        for f in diagnosis.findings
        if f.name == "graph-break" and f.location and Path(f.location.filename) == FILE
    ]
    assert located, [(f.code, f.location) for f in diagnosis.findings]
    assert {f.location.lineno for f in located} == {planted_line("scale-item")}
    assert all(f.code and f.severity and isinstance(f.evidence, dict) for f in located)


def test_both_entry_points_break_at_the_planted_line(full) -> None:
    diagnosis, _ = full
    for entry_point in ("inference", "training"):
        breaks = diagnosis.probes["graph_breaks"][entry_point]["breaks"]
        places = {(b["location"]["filename"], b["location"]["lineno"]) for b in breaks}
        assert places == {(str(FILE), planted_line("scale-item"))}, entry_point


def test_to_json_is_the_written_diagnosis_json(full) -> None:
    diagnosis, out = full
    assert json.loads(diagnosis.to_json()) == json.loads((out / "diagnosis.json").read_text())


def test_every_probe_ran_and_none_failed(full) -> None:
    diagnosis, _ = full
    assert diagnosis.status == "complete"
    assert diagnosis.probe_errors == {}
    assert {"graph_breaks", "benchmark", "kernels"} <= set(diagnosis.probes)
    assert diagnosis.reference_metrics["training_benchmarked"] is True


def test_the_cli_writes_the_same_graph_breaks_and_keys(
    full, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    diagnosis, _ = full
    out = tmp_path / "cli"
    spec = f"{FILE}:make_regressor_with_loss"
    args = ["module", spec, "--device", "cpu", "--backend", "aot_eager", "--out", str(out)]
    run_cli([*args, "--iters-inference", "3", "--iters-training", "2", "--warmup", "1"], capsys)
    cli = json.loads((out / "diagnosis.json").read_text())
    api = json.loads(diagnosis.to_json())
    assert cli.keys() == api.keys()
    assert cli["probes"].keys() == api["probes"].keys()
    assert cli["reference_metrics"].keys() == api["reference_metrics"].keys()
    for entry_point in ("inference", "training"):
        cli_breaks, api_breaks = (
            [
                (b["location"]["lineno"], b["category"], b["hits"])
                for b in d["probes"]["graph_breaks"][entry_point]["breaks"]
            ]
            for d in (cli, api)
        )
        assert cli_breaks == api_breaks


def test_without_loss_fn_the_training_probes_are_skipped_and_said() -> None:
    model, inputs = make_regressor()
    diagnosis = quick(model, inputs, probes=["graph_breaks", "benchmark"])
    assert TRAINING_SKIPPED_NOTE in diagnosis.notes
    assert "training" not in diagnosis.probes["graph_breaks"]
    assert diagnosis.reference_metrics["training_benchmarked"] is False
    assert diagnosis.reference_metrics["inference_benchmarked"] is True


def test_probes_selection_runs_only_the_probes_named() -> None:
    model, inputs = make_regressor()
    diagnosis = quick(model, inputs, probes=["graph_breaks"])
    assert list(diagnosis.probes) == ["graph_breaks"]
    assert any("not run: benchmark" in note for note in diagnosis.notes)


def test_a_probe_on_the_benchmarks_copies_brings_the_benchmark(tmp_path: Path) -> None:
    model, inputs = make_regressor()
    diagnosis = quick(model, inputs, probes=["kernels"], out_dir=tmp_path)
    # the time attribution is read from the kernel probe's traces, in the same step; the
    # compile's stages are recorded with the benchmark that compiled
    assert set(diagnosis.probes) == {"benchmark", "compile_time", "kernels", "speed"}
    assert any("benchmark ran too" in note for note in diagnosis.notes)


def test_unknown_probe_is_a_one_line_usage_error() -> None:
    model, inputs = make_regressor()
    with pytest.raises(UsageError, match="unknown probe graph_brakes"):
        quick(model, inputs, probes=["graph_brakes"])


def test_inputs_the_model_fails_on_are_a_one_line_usage_error() -> None:
    model, _ = make_regressor()
    with pytest.raises(UsageError, match="fails on its inputs") as raised:
        quick(model, (torch.randn(3, 5),))
    assert "\n" not in str(raised.value)


def test_a_loss_that_is_not_scalar_is_a_usage_error() -> None:
    model, inputs = make_regressor()
    with pytest.raises(UsageError, match="scalar tensor"):
        quick(model, inputs, loss_fn=lambda out: out)


def test_keyword_inputs_are_passed_as_keywords() -> None:
    model, inputs = make_shifted()
    diagnosis = quick(model, inputs, probes=["graph_breaks"])
    assert diagnosis.target["inputs"] == {"x": "float32[6, 8]", "shift": "float32[4]"}
    assert diagnosis.probes["graph_breaks"]["inference"]["break_count"] == 0


def test_the_callers_model_is_neither_moved_compiled_nor_trained() -> None:
    model, inputs, loss_fn, train_inputs = make_regressor_with_loss()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quick(model, inputs, loss_fn=loss_fn, train_inputs=train_inputs, probes=["benchmark"])
    assert type(model) is ScaledRegressor and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
