"""The compiler stage behind a divergence, bisected with torch's CompilerBisector by fp64.

Three planted faults, each in another stage: a layer that scales its output only while dynamo
traces it (the traced graph itself: backend eager), a custom operator whose Inductor lowering is
wrong (Inductor, in no subsystem the bisector can switch off), and Inductor's own lowering of
aten.tanh replaced by a wrong one (the lowerings subsystem, down to the tanh node). The rules
are also run on the recorded sections: the stage's meaning and the by-hand reproduction.
"""

from __future__ import annotations

import os

import pytest
import torch
from planted_divergence import (
    PLANTED_PATH,
    builtin_relu_target,
    custom_op_target,
    planted_target,
    tanh_target,
    wrong_lowering,
    wrong_relu_lowering,
    wrong_tanh_lowering,
)

from analyzer.rules.compiler_stages import (
    BACKEND_MEANINGS,
    NOTHING_FOUND,
    reproduce_command,
    stage_sentence,
)
from analyzer.rules.divergence import NUMERICAL_DIVERGENCE, numerical_divergence
from analyzer.rules.divergence_reading import complete_divergence_record
from probes.divergence.probe import probe_divergence
from probes.records.divergence import (
    BACKEND_STATE,
    BISECT,
    BISECT_BACKEND_VAR,
    BISECT_MAX_VAR,
    BISECT_SUBSYSTEM_VAR,
    WHOLE_MODEL,
)
from probes.records.serialize import to_jsonable
from probes.targets.target import CompileSettings

AOT_EAGER = CompileSettings(backend="aot_eager")
INDUCTOR = CompileSettings()


def recorded(report) -> dict:
    return complete_divergence_record(to_jsonable(report))


@pytest.fixture(scope="module")
def traced_fault():
    return recorded(probe_divergence(planted_target(), AOT_EAGER, what_ifs=()))


@pytest.fixture(scope="module")
def custom_op_fault():
    with wrong_lowering():
        return recorded(probe_divergence(custom_op_target(), INDUCTOR, what_ifs=()))


@pytest.fixture(scope="module")
def tanh_fault():
    with wrong_tanh_lowering():
        return recorded(probe_divergence(tanh_target(), INDUCTOR, what_ifs=()))


# --- the probe on real compiles ---------------------------------------------------------------


def test_fault_behind_is_compiling_bisects_to_the_traced_graph(traced_fault):
    bisection = traced_fault["bisection"]
    assert bisection["module_path"] == PLANTED_PATH  # the module confirmed alone
    assert bisection["backend"] == "eager" and bisection["subsystem"] is None
    # the very first test, dynamo alone with no compiler, already fails
    assert [(s["backend"], s["passes"]) for s in bisection["steps"]] == [("eager", False)]
    assert bisection["reproduce_env"] == {BISECT_BACKEND_VAR: "eager"}


def test_wrong_custom_operator_lowering_bisects_to_inductor(custom_op_fault):
    bisection = custom_op_fault["bisection"]
    assert custom_op_fault["localization"]["first_divergent_module"] == "custom"
    assert bisection["module_path"] == "custom"
    assert bisection["backend"] == "inductor" and bisection["subsystem"] is None
    backends = [s for s in bisection["steps"] if s["state"] == BACKEND_STATE]
    assert [s["passes"] for s in backends] == [True] * (len(backends) - 1) + [False]
    assert backends[-1]["backend"] == "inductor"
    # every subsystem tried once and none helps; the bisector's re-asks are answered, not compiled
    tried = [s["subsystem"] for s in bisection["steps"] if s["subsystem"]]
    assert len(tried) == len(set(tried)) and "lowerings" in tried
    assert not any(s["passes"] for s in bisection["steps"] if s["subsystem"])
    assert bisection["reused_answers"] > 0
    assert bisection["compiles"] == len(bisection["steps"])


def test_wrong_builtin_lowering_bisects_to_the_tanh_node(tanh_fault):
    bisection = tanh_fault["bisection"]
    assert bisection["module_path"] == WHOLE_MODEL  # tanh sits between modules: the model adds it
    assert (bisection["backend"], bisection["subsystem"]) == ("inductor", "lowerings")
    assert bisection["debug_info"] == "tanh"
    assert isinstance(bisection["bisect_number"], int)
    assert [s["state"] for s in bisection["steps"]][-1] == BISECT
    assert bisection["reproduce_env"] == {
        BISECT_BACKEND_VAR: "inductor",
        BISECT_SUBSYSTEM_VAR: "lowerings",
        BISECT_MAX_VAR: str(bisection["bisect_number"]),
    }


def test_a_builtin_module_compiled_alone_compiles_and_bisects_to_its_lowering():
    # nn.Module.compile() on torch.nn's own ReLU compiles nothing (dynamo skips torch's frames):
    # the confirmation and the bisection compile it through a frame of their own
    with wrong_relu_lowering():
        report = recorded(probe_divergence(builtin_relu_target(), INDUCTOR, what_ifs=()))
    confirmation = report["localization"]["confirmation"]
    assert report["localization"]["first_divergent_module"] == "act"
    assert confirmation["frames_compiled"] >= 1 and confirmation["reproduced"]
    bisection = report["bisection"]
    assert (bisection["module_path"], bisection["subsystem"]) == ("act", "lowerings")
    assert bisection["debug_info"] == "relu"


def test_bisection_restores_the_bisector_and_leaves_no_state():
    from torch._inductor.compiler_bisector import BACKENDS, CompilerBisector

    before = (CompilerBisector.bisection_enabled, CompilerBisector.in_process_cache)
    subsystems = {name: list(items) for name, items in BACKENDS.items()}
    with wrong_tanh_lowering():
        report = probe_divergence(tanh_target(), INDUCTOR, what_ifs=(), localize=False, bisect=True)
    assert report.bisection is not None and report.bisection.subsystem == "lowerings"
    assert (CompilerBisector.bisection_enabled, CompilerBisector.in_process_cache) == before
    assert {name: list(items) for name, items in BACKENDS.items()} == subsystems
    assert not os.environ.get(BISECT_BACKEND_VAR)
    # after the bisection, compiling is compiling again: the same model, no lowering fault
    model = tanh_target().module
    x = torch.randn(8, 4)
    torch._dynamo.reset()
    torch.testing.assert_close(torch.compile(model, backend="aot_eager")(x), model(x))


def test_no_bisect_turns_it_off_and_says_so():
    report = probe_divergence(planted_target(), AOT_EAGER, what_ifs=(), bisect=False)
    assert report.localization is not None and report.localization.confirmation is not None
    assert report.bisection is None and report.bisection_note == "not run: not requested"


def test_a_model_without_divergence_is_not_bisected_unless_asked():
    from planted_divergence import PlantedStack, module_target
    from torch import nn

    torch.manual_seed(0)
    target = module_target("correct-stack", PlantedStack(nn.Linear), 4, 2)
    quiet = probe_divergence(target, AOT_EAGER, what_ifs=())
    assert quiet.bisection is None and quiet.bisection_note.startswith("not run")
    asked = probe_divergence(target, AOT_EAGER, what_ifs=(), bisect=True)
    assert asked.bisection is not None and asked.bisection.module_path == WHOLE_MODEL
    assert asked.bisection.backend is None  # every backend passes
    assert all(step.passes for step in asked.bisection.steps)


# --- the rules on what was recorded ------------------------------------------------------------


def test_finding_names_the_traced_graph_and_how_to_reproduce(traced_fault):
    found = numerical_divergence(traced_fault)
    assert found is not None and found.code == NUMERICAL_DIVERGENCE.code
    assert found.evidence["bisect_backend"] == "eager"
    assert found.evidence["bisect_stage"] == stage_sentence(traced_fault["bisection"])
    assert "the graph dynamo traced already differs" in found.cause
    assert found.next_steps[0].startswith(f"{BISECT_BACKEND_VAR}=eager python")
    assert found.confidence == "high"


def test_finding_names_inductors_lowering_of_the_node(tanh_fault):
    found = numerical_divergence(tanh_fault)
    number = tanh_fault["bisection"]["bisect_number"]
    assert found is not None
    assert found.evidence["bisect_subsystem"] == "lowerings"
    assert found.evidence["bisect_debug_info"] == "tanh"
    assert "Inductor's lowering of `tanh`" in found.cause
    assert f"{BISECT_MAX_VAR}={number} python" in found.next_steps[0]
    assert f"{BISECT_MAX_VAR}={number - 1} does not" in found.next_steps[0]


def test_stage_sentences_for_each_kind_of_answer():
    assert stage_sentence({"backend": None}) == NOTHING_FOUND
    assert BACKEND_MEANINGS["inductor"] in stage_sentence({"backend": "inductor"})
    change = {
        "backend": "inductor",
        "subsystem": "inductor_emulate_precision_casts",
        "config_change": {"config": "inductor", "field": "emulate_precision_casts", "value": True},
    }
    assert "`inductor.emulate_precision_casts = True` removes it" in stage_sentence(change)
    assert "torch._inductor.config.emulate_precision_casts = True" in reproduce_command(change)
    passes = {"backend": "aot_eager_decomp_partition", "subsystem": "decomposition"}
    passes |= {"bisect_number": 4, "debug_info": "aten.gelu"}
    assert "a decomposition of an aten operator" in stage_sentence(passes)
    assert "application 4" in stage_sentence(passes)
    assert reproduce_command({"backend": None, "reproduce_env": {}}) is None
