"""Recompile severities on real compiles: the recompiles torch makes by design are info.

Each test compiles a small module with backend="eager", calls it the way the diagnosis does
(`module_recompile_scenarios`, run as `analyzer.runner.run` runs them), and reads the findings
of the recorded JSON. The guard texts are torch's; the tests look for the parts torch 2.11
writes ("GLOBAL_STATE changed: grad_mode", "training ==", "size mismatch at index 0").

Run as a script, this module records the fixtures `tests/fixtures/recompiles_*.json` that
`test_recompile_severity_rules.py` reads: `python tests/test_recompile_severity.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from analyzer.findings import Severity
from analyzer.rules.compile import check
from probes.compile.recompiles import RecompileScenario, probe_recompiles
from probes.records.compile import RecompileReport, graph_breaks_section
from probes.records.names import INFERENCE
from probes.records.serialize import dumps
from probes.targets.module import module_target
from probes.targets.target import CompileSettings

FIXTURES = Path(__file__).parent / "fixtures"


class Healthy(nn.Module):
    """An MLP with dropout: nothing in it depends on the batch size or a Python value."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SpecialisesOnBatch(nn.Module):
    """A Python loop over the rows: dynamo unrolls it, so each batch size is a graph of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        for i in range(x.shape[0]):
            y = y + i
        return y


def mean_square(output: torch.Tensor) -> torch.Tensor:
    return output.pow(2).mean()


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def diagnose_recompiles(model: nn.Module, batch: int = 6) -> RecompileReport:
    """The recompile probe as the runner runs it: an eager-backend copy, the module scenarios.

    The module scenarios call with half the batch too: 6 -> 3, or 2 -> 1.
    """
    torch._dynamo.reset()
    torch.manual_seed(0)
    target = module_target(model, (torch.randn(batch, 8),), loss_fn=mean_square)
    compiled = target.compiled_copy(CompileSettings(backend="eager", how="module"))
    target.infer(compiled)  # the first compile
    assert target.recompile_scenarios is not None
    scenarios = [RecompileScenario(n, c) for n, c in target.recompile_scenarios(compiled)]
    entry_fn = target.entry_functions(compiled)[INFERENCE][0]
    return probe_recompiles(INFERENCE, entry_fn, scenarios)


def recorded(report: RecompileReport) -> dict[str, Any]:
    """The `probes` section the rules read, through JSON as diagnosis.json holds it."""
    return {"graph_breaks": json.loads(dumps(graph_breaks_section([], [], [report])))}


def recompile_findings(report: RecompileReport):
    return [f for f in check(recorded(report)) if f.name == "recompilation"]


def by_scenario(report: RecompileReport, part: str):
    (scenario,) = [s for s in report.scenarios if part in s.name]
    return scenario


def test_healthy_model_recompiles_only_by_design_and_gets_no_warning():
    report = diagnose_recompiles(Healthy())
    findings = recompile_findings(report)
    assert len(findings) == report.recompile_count == 3  # grad, train/eval, batch size
    assert {f.severity for f in findings} == {Severity.INFO}
    assert not report.limit_hit


def test_grad_switch_and_train_eval_are_one_recompile_each_on_a_mode_guard():
    report = diagnose_recompiles(Healthy())
    (grad,) = by_scenario(report, "grad enabled").recompiles
    (mode,) = by_scenario(report, "train then eval").recompiles
    assert grad.guard.startswith("GLOBAL_STATE changed: grad_mode")
    assert "training == False" in mode.guard
    assert grad.symbolic_sizes == mode.symbolic_sizes == {}


def test_batch_size_recompile_leaves_the_batch_symbolic_and_says_so():
    report = diagnose_recompiles(Healthy())
    scenario = by_scenario(report, "batch size")
    (recompile,) = scenario.recompiles
    assert "size mismatch at index 0" in recompile.guard
    (symbol,) = recompile.symbolic_sizes.values()
    (finding,) = [f for f in recompile_findings(report) if f.evidence["scenario"] == scenario.name]
    assert finding.severity == Severity.INFO
    assert f"the symbol {symbol}" in finding.cause
    assert finding.evidence["symbolic_sizes"] == [symbol]


def test_a_batch_of_one_gets_a_graph_of_its_own_by_design():
    report = diagnose_recompiles(Healthy(), batch=2)
    scenario = by_scenario(report, "batch size 2 -> 1")
    (recompile,) = scenario.recompiles
    assert recompile.guard.endswith("expected 2, actual 1")
    assert recompile.symbolic_sizes == {}  # torch specialises a size of 1
    (finding,) = [f for f in recompile_findings(report) if f.evidence["scenario"] == scenario.name]
    assert finding.severity == Severity.INFO
    assert "a size of 1 by design" in finding.cause
    assert {f.severity for f in recompile_findings(report)} == {Severity.INFO}


def test_a_size_the_code_specialises_on_stays_a_warning():
    report = diagnose_recompiles(SpecialisesOnBatch())
    (recompile,) = by_scenario(report, "batch size").recompiles
    assert "size mismatch at index 0" in recompile.guard
    assert recompile.symbolic_sizes == {}  # torch specialised the size: the graph has numbers
    (finding,) = [f for f in recompile_findings(report) if "size mismatch" in f.cause]
    assert finding.severity == Severity.WARNING
    assert not finding.evidence["by_design"]


def test_recompiling_on_every_call_is_a_warning():
    compiled = torch.compile(SpecialisesOnBatch(), backend="eager")
    compiled(torch.randn(2, 8))

    def every_size() -> None:
        for n in (3, 4, 5):
            compiled(torch.randn(n, 8))

    report = probe_recompiles(INFERENCE, compiled, [RecompileScenario("sizes 3, 4, 5", every_size)])
    (finding,) = recompile_findings(report)
    assert finding.evidence["recompile_count"] == len(report.scenarios[0].recompiles) == 3
    assert finding.severity == Severity.WARNING


def test_the_limit_hit_stays_an_error():
    compiled = torch.compile(SpecialisesOnBatch(), backend="eager")
    with torch._dynamo.config.patch(recompile_limit=2):
        compiled(torch.randn(2, 8))
        report = probe_recompiles(
            INFERENCE,
            compiled,
            [
                RecompileScenario(
                    "sizes 3, 4", lambda: [compiled(torch.randn(n, 8)) for n in (3, 4)]
                )
            ],
        )
    assert report.limit_hit
    assert Severity.ERROR in {f.severity for f in recompile_findings(report)}


# --- recording the fixtures --------------------------------------------------------------------


FIXTURE_MODELS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "healthy": (Healthy, 6),
    "batch_of_one": (Healthy, 2),
    "specialised": (SpecialisesOnBatch, 6),
}


def record_fixtures() -> None:
    for name, (make, batch) in FIXTURE_MODELS.items():
        path = FIXTURES / f"recompiles_{name}.json"
        probes = recorded(diagnose_recompiles(make(), batch))
        path.write_text(json.dumps(probes, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    record_fixtures()
