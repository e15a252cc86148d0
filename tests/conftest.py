"""Shared fixtures: small real ACT targets, and the one Inductor diagnosis of the session.

Everything runs on the CPU with real lerobot and real torch.compile. Tests that are not about
Inductor use backend="aot_eager"; the one Inductor run is session-scoped and shared.
"""

from __future__ import annotations

import os

# Never reach for the hub in tests: a test that needs the network fails instead of downloading.
# Set before anything imports huggingface_hub, which reads the variable once, at import.
os.environ["HF_HUB_OFFLINE"] = "1"

import json
from pathlib import Path

import pytest
import torch

from analyzer.cli import main as cli_main
from probes.targets.lerobot.policy import PolicyRequest, build_target


@pytest.fixture(scope="module", autouse=True)
def fresh_dynamo_per_module() -> None:
    """Each test module starts as a fresh process would, with nothing another module compiled.

    pytest-randomly runs the modules in a new order every time: compiled code, cache entries
    and guard failures left by one module must not change what the next one counts.
    """
    torch._dynamo.reset()


@pytest.fixture(scope="session")
def inductor_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Inductor cache for the session, so compiled kernels are reused across tests."""
    path = tmp_path_factory.mktemp("inductor-cache")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    return path


def tiny_act(**overrides: str):
    request = PolicyRequest(
        policy="act", device=torch.device("cpu"), preset="tiny", overrides=overrides
    )
    return build_target(request)[0]


@pytest.fixture
def act_target():
    return tiny_act()


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="session")
def inductor_act_diagnosis(tmp_path_factory: pytest.TempPathFactory, inductor_cache: Path) -> dict:
    """`compile-diagnose act` with the real Inductor backend on the tiny preset, run once."""
    out = tmp_path_factory.mktemp("act-inductor")
    code = cli_main(
        [
            "act",
            "--preset",
            "tiny",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--rng-what-if",  # off by default on a CPU; one more compile of the tiny training step
            # a cold compile whatever ran before, and its warm rerun in a fresh process
            "--fresh-cache",
            "--compile-lever",
            "warm-cache",
            "--json",
            str(out / "stdout.json"),
        ]
    )
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    diagnosis["_exit_code"] = code
    return diagnosis
