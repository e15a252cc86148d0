"""Faults during a diagnosis: each ends as one line and the right exit status, losing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import tiny_act

import analyzer.runner.run
from analyzer.diagnosis import Diagnosis
from analyzer.runner.run import DiagnosisRun
from probes.records.benchmark import BenchmarkSettings
from probes.targets.target import CompileSettings

QUICK = BenchmarkSettings(iters_inference=2, iters_training=1, warmup=1)


def diagnose(target, out: Path, backend="aot_eager") -> Diagnosis:
    run = DiagnosisRun(target, CompileSettings(backend=backend), QUICK, Diagnosis("test"), out)
    return run.run()


def on_disk(out: Path) -> dict:
    return json.loads((out / "diagnosis.json").read_text())


def names(diagnosis: Diagnosis) -> list[str]:
    return [f.name for f in diagnosis.findings]


def test_compiler_error_is_a_finding_and_explain_still_ran(tmp_path: Path) -> None:
    def refusing_backend(graph_module, example_inputs):
        raise RuntimeError("this backend refuses every graph")

    diagnosis = diagnose(tiny_act(), tmp_path, backend=refusing_backend)
    recorded = on_disk(tmp_path)
    assert recorded["reference_metrics"]["compilation_successful"] is False
    assert "refuses every graph" in recorded["reference_metrics"]["compilation_error"]
    assert recorded["probes"]["graph_breaks"]["training"]["break_count"] >= 1
    assert "compilation-failed" in names(diagnosis)
    assert diagnosis.has_errors


def test_out_of_memory_names_the_batch_size_and_a_smaller_one(tmp_path: Path) -> None:
    target = tiny_act()

    def loss_out_of_memory(copy):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    target.loss = loss_out_of_memory
    diagnosis = diagnose(target, tmp_path)
    (failed,) = [f for f in diagnosis.findings if f.name == "probe-failed"]
    assert failed.evidence["batch_size"] == 2
    assert "--batch-size 1" in " ".join(failed.next_steps)
    assert "OutOfMemoryError" in on_disk(tmp_path)["probe_errors"]["benchmark"]


def test_a_probe_that_raises_is_a_finding_and_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_profiler(*args, **kwargs):
        raise RuntimeError("profiler exploded")

    monkeypatch.setattr(analyzer.runner.run, "profile_kernels", broken_profiler)
    diagnosis = diagnose(tiny_act(), tmp_path)
    assert diagnosis.probe_errors == {"kernels": "RuntimeError: profiler exploded"}
    assert "probe-failed" in names(diagnosis)
    assert "recompiles" in on_disk(tmp_path)["probes"]["graph_breaks"]
    assert diagnosis.status == "complete"


def global_state() -> dict:
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config
    from torch._inductor import select_algorithm

    return {
        "inductor": inductor_config.get_config_copy(),
        "dynamo": dynamo_config.get_config_copy(),
        "matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "grad_enabled": torch.is_grad_enabled(),
        "rng": torch.get_rng_state(),
        "threads": torch.get_num_threads(),
        "print_autotune": select_algorithm.PRINT_AUTOTUNE,
        "warning_filters": list(warnings.filters),
    }


def test_a_diagnosis_leaves_global_torch_state_as_it_found_it(tmp_path: Path) -> None:
    target = tiny_act()
    torch.manual_seed(1234)
    before = global_state()
    diagnose(target, tmp_path)
    after = global_state()
    assert torch.equal(before.pop("rng"), after.pop("rng"))
    changed = {
        key: (before["inductor"][key], after["inductor"][key])
        for key in before["inductor"]
        if before["inductor"][key] != after["inductor"][key]
    }
    assert not changed
    assert before == after


def test_ctrl_c_writes_partial_results_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["act", "--preset", "tiny", "--device", "cpu", "--backend", "aot_eager"]
    process = subprocess.Popen(
        [sys.executable, "-m", "analyzer.cli", *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        # as from a terminal: a test run started in the background hands on SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # interrupt once the first probe has been written
        path = out / "diagnosis.json"
        if path.exists() and "graph_breaks" in json.loads(path.read_text() or "{}")["probes"]:
            break
        if process.poll() is not None:
            pytest.fail(f"the diagnosis ended before it could be interrupted: {process.stderr}")
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "compile-diagnose: interrupted"
    recorded = on_disk(out)
    assert recorded["status"] == "interrupted"
    assert "graph_breaks" in recorded["probes"]
