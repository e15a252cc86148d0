"""The memory plan: the model's bytes, the free memory, which probes fit, and what it says.

The estimate is checked against the real tensors of small modules; the plan's decisions with
budgets stated in bytes, small beside a small real target (so that no test needs memory to run
out); one real diagnosis (backend="aot_eager") where the benchmark is skipped for memory and
graph breaks and recompiles still run; the rules on recorded plans; the CLI's --memory-budget.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import run_cli
from custom_models import FILE, make_regressor, make_regressor_with_loss
from rich.console import Console
from torch import nn

from analyzer import diagnose_module
from analyzer.commands.common import memory_budget_argument
from analyzer.diagnosis import Diagnosis
from analyzer.errors import UsageError
from analyzer.format import byte_size
from analyzer.render.diagnosis import diagnosis_view
from analyzer.render.memory import memory_plan_markdown, memory_plan_view
from analyzer.render.report_markdown import report_markdown
from analyzer.rules import memory as rules
from analyzer.rules import run_rules
from analyzer.runner.run import DiagnosisRun
from analyzer.runner.settings import memory_budget_request
from probes.memory import host_free_memory, model_footprint, plan_memory, what_ifs_that_fit
from probes.records.benchmark import BenchmarkSettings
from probes.records.memory import (
    ACTIVATION_RESERVE,
    SKIPPED_MEMORY,
    SKIPPED_NO_BENCHMARK,
    SOURCE_BUDGET,
    SOURCE_CGROUP,
    SOURCE_MEMINFO,
    SOURCE_UNKNOWN,
    MemoryPlan,
    free_bytes_needed,
)
from probes.records.serialize import to_jsonable
from probes.speed.plan import PlannedWhatIf
from probes.targets.module import module_target
from probes.targets.target import CompileSettings

QUICK = BenchmarkSettings(iters_inference=3, iters_training=2, warmup=1)
REUSERS = ("kernels", "what_ifs", "compile_time", "divergence")


def tensor_bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class Mixed(nn.Module):
    """Trainable and frozen parameters, float and integer buffers, one weight tied twice."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.embed.weight  # tied: one tensor
        self.norm = nn.BatchNorm1d(6)  # running stats (float) and num_batches_tracked (int64)
        self.frozen = nn.Linear(6, 6)
        self.frozen.requires_grad_(False)


# --- the estimate --------------------------------------------------------------------------


def test_footprint_is_the_bytes_of_the_real_tensors() -> None:
    module = Mixed()
    found = model_footprint(module)
    parameters = list(module.parameters())  # the tied weight once
    assert found.parameter_bytes == tensor_bytes(parameters)
    assert found.buffer_bytes == tensor_bytes(module.buffers())
    assert found.trainable_bytes == tensor_bytes(p for p in parameters if p.requires_grad)
    assert found.parameter_count == sum(p.numel() for p in parameters)
    assert found.trainable_bytes < found.parameter_bytes  # the frozen layer is not trainable
    assert found.dtypes == ["float32", "int64"]
    # the fp64 reference is what float64_copy makes: the floats at 8 bytes, the rest as is
    fp64 = copy.deepcopy(module).to(torch.float64)
    assert found.fp64_bytes == tensor_bytes([*fp64.parameters(), *fp64.buffers()])


def test_the_dtype_changes_the_bytes_but_not_the_count() -> None:
    module = Mixed()
    single = model_footprint(module)
    half = model_footprint(copy.deepcopy(module).to(torch.bfloat16))
    assert half.parameter_count == single.parameter_count
    assert half.parameter_bytes * 2 == single.parameter_bytes
    integer = 8  # num_batches_tracked keeps its int64
    assert half.buffer_bytes - integer == (single.buffer_bytes - integer) // 2
    assert half.fp64_bytes == single.fp64_bytes  # float64 from either


# --- the free memory -----------------------------------------------------------------------


def write(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".")).write_text(text)
    return folder


def test_host_free_memory_reads_meminfo_and_a_smaller_cgroup_limit(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   16000000 kB\n")
    no_cgroup = tmp_path / "none"
    assert host_free_memory(meminfo, no_cgroup) == (16000000 * 1024, SOURCE_MEMINFO)
    unlimited = write(tmp_path / "max", memory_max="max\n", memory_current="100\n")
    assert host_free_memory(meminfo, unlimited) == (16000000 * 1024, SOURCE_MEMINFO)
    limited = write(tmp_path / "lim", memory_max=f"{8 * 2**30}\n", memory_current=f"{2**30}\n")
    assert host_free_memory(meminfo, limited) == (7 * 2**30, SOURCE_CGROUP)
    assert host_free_memory(tmp_path / "nothing", no_cgroup) == (None, SOURCE_UNKNOWN)


# --- the plan's decisions ------------------------------------------------------------------


@pytest.fixture(scope="module")
def training_target():
    model, inputs, loss_fn, train_inputs = make_regressor_with_loss()
    return module_target(model, inputs, loss_fn=loss_fn, train_inputs=train_inputs)


def decisions(plan: MemoryPlan) -> dict[str, str | None]:
    return {e.probe: None if e.runs else e.skipped for e in plan.probes}


def budget_for(usable: int) -> int:
    """The budget that leaves `usable` bytes for the probes' items."""
    return free_bytes_needed(usable, ACTIVATION_RESERVE)


def test_everything_fits_in_a_large_budget(training_target) -> None:
    plan = plan_memory(training_target, budget=2**30)
    assert plan.source == SOURCE_BUDGET and plan.available_bytes == 2**30
    assert set(decisions(plan).values()) == {None}
    assert [e.probe for e in plan.probes] == [
        "graph_breaks",
        "benchmark",
        *REUSERS,
        "recompiles",
    ]
    copy_bytes = plan.footprint.model_bytes
    grads = plan.footprint.trainable_bytes
    benchmark = plan.entry("benchmark")
    assert benchmark.resident_bytes == 0
    assert benchmark.needed_bytes == 2 * copy_bytes + 2 * grads + 4 * grads  # copies, grads, Adam
    # what the benchmark keeps (its copies, the gradients of their last step) is resident after
    for name in (*REUSERS, "recompiles"):
        assert plan.entry(name).resident_bytes == 2 * copy_bytes + 2 * grads, name
    assert plan.required_bytes == max(e.peak_bytes for e in plan.probes)


def test_only_graph_breaks_and_recompiles_fit(training_target) -> None:
    copy_bytes = model_footprint(training_target.module).model_bytes
    plan = plan_memory(training_target, budget=budget_for(copy_bytes + copy_bytes // 2))
    assert decisions(plan) == {
        "graph_breaks": None,
        "benchmark": SKIPPED_MEMORY,
        **dict.fromkeys(REUSERS, SKIPPED_NO_BENCHMARK),
        "recompiles": None,
    }
    # with no benchmark run, recompiles' one compiled copy is all that is held
    assert plan.entry("recompiles").peak_bytes == copy_bytes


def test_nothing_fits_in_a_budget_below_one_copy(training_target) -> None:
    copy_bytes = model_footprint(training_target.module).model_bytes
    plan = plan_memory(training_target, budget=budget_for(copy_bytes - 1))
    assert all(not e.runs for e in plan.probes)
    assert plan.entry("graph_breaks").skipped == SKIPPED_MEMORY
    assert plan.entry("divergence").skipped == SKIPPED_NO_BENCHMARK


def test_the_benchmark_fits_and_a_probe_on_its_copies_does_not(training_target) -> None:
    full = plan_memory(training_target, budget=2**30)
    kernels, divergence = full.entry("kernels"), full.entry("divergence")
    assert kernels.peak_bytes < divergence.peak_bytes
    plan = plan_memory(training_target, budget=budget_for(divergence.peak_bytes - 1))
    assert plan.entry("benchmark").runs and plan.entry("kernels").runs
    assert plan.entry("divergence").skipped == SKIPPED_MEMORY


def test_what_is_asked_for_changes_what_is_counted(training_target) -> None:
    plan = plan_memory(training_target, budget=2**30, what_if="none", compile_lever="none")
    assert plan.entry("what_ifs").needed_bytes == 0
    assert plan.entry("compile_time").needed_bytes == 0
    levers = plan_memory(training_target, budget=2**30, compile_lever="warm-cache")
    items = {i.what for i in levers.entry("compile_time").items}
    assert any("fresh process" in what for what in items)  # the target built again elsewhere
    selected = plan_memory(training_target, ["graph_breaks", "benchmark"], budget=2**30)
    assert [e.probe for e in selected.probes] == ["graph_breaks", "benchmark"]


def test_each_what_if_more_keeps_one_more_twin(training_target) -> None:
    full = plan_memory(training_target, budget=2**30)
    one_twin = full.footprint.model_bytes + full.footprint.trainable_bytes  # training's twin
    # room for the what-ifs' count (one twin) and one twin more, not two
    usable = full.entry("what_ifs").peak_bytes + one_twin + one_twin // 2
    plan = plan_memory(training_target, budget=budget_for(usable))
    assert plan.entry("what_ifs").runs
    planned = [
        PlannedWhatIf("freezing", "training", False, "cannot apply"),
        PlannedWhatIf("no-graph-breaks", "training", True, "3 breaks"),
        PlannedWhatIf("compiled-optimizer", "training", True, "asked for"),
        PlannedWhatIf("max-autotune-no-cudagraphs", "training", True, "asked for"),
    ]
    fitted = what_ifs_that_fit(plan, planned)
    assert [w.run for w in fitted] == [False, True, True, False]
    assert fitted[0] is planned[0]  # not run for its own reason, untouched
    assert fitted[3].reason.startswith("asked for; not run for memory: one more twin holds")
    assert f"{one_twin:,} bytes" in fitted[3].reason
    assert what_ifs_that_fit(None, planned) == planned


def test_inference_only_counts_no_gradients_or_optimizer() -> None:
    model, inputs = make_regressor()
    target = module_target(model, inputs)
    plan = plan_memory(target, budget=2**30)
    assert not plan.training
    assert plan.entry("benchmark").needed_bytes == 2 * plan.footprint.model_bytes
    assert plan.entry("kernels").items == []


def test_without_a_budget_the_free_memory_is_measured(training_target) -> None:
    plan = plan_memory(training_target)
    assert plan.source in (SOURCE_MEMINFO, SOURCE_CGROUP)
    assert plan.available_bytes > 0 and all(e.runs for e in plan.probes)  # a tiny model


# --- a real diagnosis with a budget the benchmark does not fit in --------------------------


@pytest.fixture(scope="module")
def skipped(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("memory-skip")
    model, inputs, loss_fn, train_inputs = make_regressor_with_loss()
    # 2 KiB leaves 1.6 KiB: one 848-byte copy fits, the benchmark's two with Adam do not
    diagnosis = diagnose_module(
        model,
        inputs,
        loss_fn=loss_fn,
        train_inputs=train_inputs,
        backend="aot_eager",
        benchmark=QUICK,
        out_dir=out,
        memory_budget="2KiB",
    )
    return diagnosis, out


def test_the_skipped_benchmark_is_recorded_and_graph_breaks_and_recompiles_ran(skipped) -> None:
    diagnosis, out = skipped
    plan = diagnosis.memory_plan
    assert plan["available_bytes"] == 2048 and plan["source"] == SOURCE_BUDGET
    by_probe = {e["probe"]: e for e in plan["probes"]}
    assert by_probe["benchmark"]["skipped"] == SKIPPED_MEMORY
    assert {by_probe[name]["skipped"] for name in REUSERS} == {SKIPPED_NO_BENCHMARK}
    assert diagnosis.probe_errors == {}  # skipped, not failed
    assert diagnosis.status == "complete"
    assert "benchmark" not in diagnosis.probes and "kernels" not in diagnosis.probes
    breaks = diagnosis.probes["graph_breaks"]
    assert breaks["inference"]["breaks"]  # graph breaks ran
    assert breaks["recompiles"]  # and the recompile scenarios, on their own compiled copy
    written = json.loads((out / "diagnosis.json").read_text())
    assert written["memory_plan"] == json.loads(json.dumps(plan))


def test_the_finding_names_the_probe_its_items_and_the_machine(skipped) -> None:
    diagnosis, _ = skipped
    found = [f for f in diagnosis.findings if f.name == "probe-skipped-for-memory"]
    assert [f.evidence["probe"] for f in found] == ["benchmark"]
    finding = found[0]
    assert finding.severity == "warning"
    entry = next(e for e in diagnosis.memory_plan["probes"] if e["probe"] == "benchmark")
    assert finding.evidence["items_bytes"] == {i["what"]: i["bytes"] for i in entry["items"]}
    assert sum(finding.evidence["items_bytes"].values()) == entry["needed_bytes"]
    assert finding.evidence["skipped_with_it"] == list(REUSERS)
    assert "2.0 KiB available (the stated memory budget" in finding.cause
    assert "GPU of 8 GB or more" in finding.cause
    assert finding.next_steps[0].startswith("run it on a machine with at least 8.3 KiB free")


def test_the_rendered_diagnosis_shows_the_plan(skipped) -> None:
    diagnosis, _ = skipped
    record = diagnosis.to_dict()
    for width in (80, 200):
        console = Console(width=width, record=True)
        console.print(diagnosis_view(record))
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
    assert "Memory plan" in text
    assert "skipped: the benchmark did not run" in text
    assert "CD701" in text
    markdown = report_markdown(record)
    assert "## Memory Plan" in markdown
    assert "| benchmark |" in markdown and "skipped:" in markdown


def test_recompiles_do_not_run_when_the_benchmark_ran_and_failed_to_compile() -> None:
    def refusing_backend(graph_module, example_inputs):
        raise RuntimeError("this backend refuses every graph")

    model, inputs = make_regressor()
    settings = CompileSettings(backend=refusing_backend)
    run = DiagnosisRun(module_target(model, inputs), settings, QUICK, Diagnosis("test"), None)
    diagnosis = run.run()
    assert diagnosis.reference_metrics["compilation_successful"] is False
    assert diagnosis.probes["graph_breaks"]["recompiles"] == {}
    assert diagnosis.memory_plan["source"] in (SOURCE_MEMINFO, SOURCE_CGROUP)


# --- the rules on recorded plans -----------------------------------------------------------

GB = 10**9


def recorded_plan(source: str = SOURCE_BUDGET, skip: bool = True) -> dict[str, Any]:
    """A pi0-sized plan as diagnosis.json holds it: 8 GB a copy, all of it trainable."""
    copy_bytes = trainable = 8 * GB
    benchmark = {
        "probe": "benchmark",
        "items": [
            {"what": "eager copy", "bytes": copy_bytes},
            {"what": "compiled copy", "bytes": copy_bytes},
            {"what": "gradients", "bytes": 2 * trainable},
            {"what": "Adam state", "bytes": 4 * trainable},
        ],
        "needed_bytes": 2 * copy_bytes + 6 * trainable,
        "resident_bytes": 0,
        "runs": not skip,
        "skipped": SKIPPED_MEMORY if skip else None,
    }
    kernels = {
        "probe": "kernels",
        "items": [{"what": "Adam state", "bytes": 4 * trainable}],
        "needed_bytes": 4 * trainable,
        "resident_bytes": 2 * copy_bytes + 2 * trainable,
        "runs": not skip,
        "skipped": SKIPPED_NO_BENCHMARK if skip else None,
    }
    graph_breaks = {
        "probe": "graph_breaks",
        "items": [{"what": "eager copy", "bytes": copy_bytes}],
        "needed_bytes": copy_bytes,
        "resident_bytes": 0,
        "runs": True,
        "skipped": None,
    }
    return {
        "device": "cuda:0",
        "available_bytes": None if source == SOURCE_UNKNOWN else 24 * 2**30,
        "source": source,
        "reserve_fraction": 0.2,
        "usable_bytes": None if source == SOURCE_UNKNOWN else int(24 * 2**30 * 0.8),
        "footprint": {"parameter_count": 2 * GB, "parameter_bytes": copy_bytes, "buffer_bytes": 0},
        "dtype": "float32",
        "training": True,
        "required_bytes": 2 * copy_bytes + 6 * trainable,
        "probes": [graph_breaks, benchmark, kernels],
    }


def test_a_skipped_benchmark_gets_a_finding_with_the_machine_that_would_run_it() -> None:
    findings = rules.check(recorded_plan(), {})
    assert [f.code for f in findings] == ["CD701"]
    cause = findings[0].cause
    # 64 GB at once needs 80 GB free (a fifth kept): 74.5 GiB; with the 8 GB model, 82 GiB
    assert "holds 59.6 GiB at once" in cause
    assert "at least 74.5 GiB free" in cause
    assert "a GPU of 96 GB or more" in cause
    assert "eager copy 7.5 GiB, compiled copy 7.5 GiB, gradients 14.9 GiB, Adam state" in cause
    assert "Skipped with it, since they reuse its copies: kernels" in cause
    assert findings[0].evidence["gpu_gib"] == 96


def test_no_finding_when_nothing_was_skipped_or_no_error() -> None:
    assert rules.check(recorded_plan(skip=False), {}) == []
    assert rules.check(None, {"benchmark": "torch.OutOfMemoryError: ..."}) == []
    unknown = recorded_plan(SOURCE_UNKNOWN, skip=False)
    assert rules.check(unknown, {"benchmark": "RuntimeError: shapes differ"}) == []


def test_an_out_of_memory_where_the_free_memory_was_unknown() -> None:
    unknown = recorded_plan(SOURCE_UNKNOWN, skip=False)
    error = "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    findings = run_rules({}, {"benchmark": error}, memory_plan=unknown)
    unplanned = [f for f in findings if f.code == "CD702"]
    assert len(unplanned) == 1 and unplanned[0].evidence["probe"] == "benchmark"
    assert "could not be read" in unplanned[0].cause
    assert "--memory-budget" in unplanned[0].next_steps[0]
    assert any(f.code == "CD501" for f in findings)  # the failure itself stays reported


def test_byte_sizes_and_gpu_sizes() -> None:
    assert byte_size(848) == "848 B"
    assert byte_size(2048) == "2.0 KiB"
    assert byte_size(7.7 * 2**30) == "7.7 GiB"
    assert rules.smallest_gpu_gib(24 * 2**30) == 24
    assert rules.smallest_gpu_gib(24 * 2**30 + 1) == 32
    assert rules.smallest_gpu_gib(10**15) is None


def test_the_plan_is_one_line_unless_something_was_skipped_or_a_budget_stated() -> None:
    measured = {**recorded_plan(SOURCE_MEMINFO, skip=False)}
    assert len(memory_plan_markdown(measured)) == 4  # heading, blank, the line, blank
    assert "| benchmark |" in "\n".join(memory_plan_markdown(recorded_plan()))
    console = Console(width=160, record=True)
    console.print(memory_plan_view(to_jsonable(measured)))
    assert "Memory plan" not in console.export_text()
    assert memory_plan_view(None) is None


# --- the budget as the user writes it ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24GiB", 24 * 2**30),
        ("24G", 24 * 10**9),
        ("512MiB", 512 * 2**20),
        ("1.5GB", 1_500_000_000),
        ("4096", 4096),
        ("2 gib", 2 * 2**30),
    ],
)
def test_a_budget_reads_as_bytes(text: str, expected: int) -> None:
    assert memory_budget_argument(text) == expected
    assert memory_budget_request(text) == expected


def test_a_bad_budget_is_a_usage_error() -> None:
    for bad in ("lots", "24 GiBs", "-1", "0"):
        with pytest.raises(UsageError, match="memory_budget"):
            memory_budget_request(bad)
    with pytest.raises(UsageError, match="memory_budget"):
        memory_budget_request(1.5)  # type: ignore[arg-type]


def test_the_cli_takes_a_budget_and_refuses_bad_text_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = f"{FILE}:make_regressor"
    args = ["module", spec, "--device", "cpu", "--backend", "aot_eager", "--probes"]
    code, _, err = run_cli([*args, "graph_breaks", "--memory-budget", "24 parsecs"], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--memory-budget" in lines[0] and "24 parsecs" in lines[0]
    out = tmp_path / "out"
    code, _, _ = run_cli(
        [*args, "graph_breaks", "--memory-budget", "1MiB", "--out", str(out), "--json", "-"],
        capsys,
    )
    assert code in (0, 1)
    plan = json.loads((out / "diagnosis.json").read_text())["memory_plan"]
    assert plan["available_bytes"] == 2**20 and plan["source"] == SOURCE_BUDGET
    assert [e["probe"] for e in plan["probes"]] == ["graph_breaks"]
