"""A real TensorBoard with the PyTorch Profiler plugin lists the runs the probe wrote."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from probes.kernels.profiling import profile_kernels

pytest.importorskip("tensorboard")
pytest.importorskip("torch_tb_profiler")

PLUGIN = "/data/plugin/pytorch_profiler"
LOAD_TIMEOUT_S = 90
# Loopback only: a proxy named in the environment must not see these requests.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> Any:
    with OPENER.open(url, timeout=5) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = torch.nn.Linear(8, 8)
    compiled = torch.compile(torch.nn.Linear(8, 8), backend="eager")
    inputs = torch.randn(4, 8)
    report = profile_kernels(
        {"forward": (lambda: model(inputs), lambda: compiled(inputs))},
        device="cpu",
        out_dir=tmp_path_factory.mktemp("probe"),
        warmup=1,
        calls=1,
    )
    return Path(report.tensorboard_logdir)


@pytest.fixture(scope="module")
def tensorboard(logdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("tensorboard") / "tensorboard.log").open("w")
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield wait_for_runs(f"http://127.0.0.1:{port}", server, {"eager", "compiled"}, log.name)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def wait_for_runs(base: str, server: subprocess.Popen, runs: set[str], log: str) -> str:
    """Poll the plugin until it has loaded `runs`; the base URL once it has."""
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    answer = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tensorboard exited with {server.returncode}; see {log}")
        try:
            answer = get_json(base + PLUGIN + "/runs")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            answer = None
        if answer and not answer["loading"] and runs <= set(answer["runs"]):
            return base
        time.sleep(0.5)
    pytest.fail(f"the profiler plugin did not list {sorted(runs)} in {LOAD_TIMEOUT_S} s: {answer}")


def test_plugin_lists_eager_and_compiled_as_two_runs(tensorboard: str) -> None:
    assert sorted(get_json(tensorboard + PLUGIN + "/runs")["runs"]) == ["compiled", "eager"]


@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_each_run_has_one_worker_per_entry_point(tensorboard: str, run: str) -> None:
    workers = get_json(f"{tensorboard}{PLUGIN}/workers?run={run}&view=Overview")
    assert workers == ["forward"]
