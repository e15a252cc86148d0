"""The divergence probe on small models: a planted miscompile, dropout, and what it restores.

Planted errors need no Inductor (they are compiled in by `torch.compiler.is_compiling()`), so
those runs use aot_eager; the dropout model needs Inductor's own random numbers and is tiny.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F
from planted_divergence import (
    PLANTED_PATH,
    PlantedStack,
    dropout_target,
    gradient_planted_target,
    module_target,
    planted_target,
)
from torch import nn
from torch._dynamo.utils import same

from analyzer.rules.divergence_reading import DivergenceReading, read_divergence
from probes.divergence.dropout import dropout_disabled, dropout_sites
from probes.divergence.fp64_criterion import compare
from probes.divergence.fp64_reference import float64_copy, run_float64
from probes.divergence.probe import probe_divergence
from probes.divergence.tf32 import tf32
from probes.records.divergence import (
    ARITHMETIC,
    AS_IS,
    DROPOUT_OFF,
    EVAL,
    FALLBACK_RANDOM,
    NONE,
    RNG,
    DivergenceReport,
    Fp64Criterion,
)
from probes.records.serialize import dumps, to_jsonable
from probes.targets.target import CompileSettings

AOT_EAGER = CompileSettings(backend="aot_eager")


def reading(report: DivergenceReport) -> DivergenceReading:
    """The verdicts the analyzer reads from the report, as it records it."""
    return read_divergence(to_jsonable(report))


@pytest.fixture(scope="module")
def planted():
    return probe_divergence(planted_target(), AOT_EAGER)


@pytest.fixture(scope="module")
def gradient_planted():
    return probe_divergence(gradient_planted_target(), AOT_EAGER)


@pytest.fixture(scope="module")
def correct_model():
    torch.manual_seed(0)
    return module_target("correct-stack", PlantedStack(nn.Linear), 4, 2)


# --- the criterion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numel", "eager_noise", "compiled_noise"),
    [
        (100, 0.0, 1e-7),  # within allclose
        (100, 0.0, 1e-3),  # far from fp64, eager exact
        (100, 1e-3, 1e-3),  # both as far from fp64: allclose fails, RMSE passes
        (100, 1e-3, 2.5e-3),  # 2.5x eager's error: passes with 3x for small tensors
        (5000, 1e-3, 2.5e-3),  # ... and fails with 2x for large ones
        (5000, 1e-3, 1.5e-3),
    ],
)
def test_criterion_decides_as_torch_dynamo_same(numel, eager_noise, compiled_noise):
    generator = torch.Generator().manual_seed(0)
    fp64 = torch.randn(numel, generator=generator, dtype=torch.float64)
    eager = (fp64 + eager_noise * torch.randn(numel, generator=generator).double()).float()
    compiled = (fp64 + compiled_noise * torch.randn(numel, generator=generator).double()).float()
    ours = compare("x", eager, compiled, fp64, Fp64Criterion()).passes
    theirs = same(eager, compiled, fp64_ref=fp64, tol=1e-4, log_error=lambda *args: None)
    assert ours == theirs


# --- the switches ------------------------------------------------------------------------------


class EveryDropout(nn.Module):
    """Dropout as a module, inside attention, and as a functional call with a literal p."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.attention = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(x, x, x)
        return F.dropout(self.drop(attended), 0.5, self.training)


def test_dropout_off_makes_train_mode_outputs_independent_of_the_seed():
    module, x = EveryDropout().train(), torch.randn(2, 5, 8)
    with dropout_disabled(module):
        torch.manual_seed(0)
        first = module(x)
        torch.manual_seed(1)
        second = module(x)
    assert torch.equal(first, second)


def test_dropout_draws_again_after_the_switch_is_closed():
    module, x = EveryDropout().train(), torch.randn(2, 5, 8)
    with dropout_disabled(module):
        pass
    torch.manual_seed(0)
    first = module(x)
    torch.manual_seed(1)
    assert not torch.equal(first, module(x))


def test_dropout_switch_restores_probabilities_and_functions():
    module = EveryDropout()
    functions = (F.dropout, F.scaled_dot_product_attention)
    with dropout_disabled(module):
        assert (module.drop.p, module.attention.dropout) == (0.0, 0.0)
    assert (module.drop.p, module.attention.dropout) == (0.5, 0.5)
    assert (F.dropout, F.scaled_dot_product_attention) == functions


def test_dropout_sites_name_modules_and_attention():
    sites = dropout_sites(EveryDropout())
    assert (sites.modules, sites.attention) == (["drop"], ["attention"])


def test_tf32_switch_sets_both_sides_and_restores():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with tf32(not before[0]):
        assert torch.backends.cuda.matmul.allow_tf32 is (not before[0])
        assert torch.backends.cudnn.allow_tf32 is (not before[0])
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_fp64_reference_computes_loss_and_gradients_in_float64(correct_model):
    copy = float64_copy(correct_model)
    loss = run_float64(lambda: correct_model.loss(copy))  # float32 inputs and labels
    loss.backward()
    assert loss.dtype == torch.float64
    assert {p.grad.dtype for p in copy.parameters()} == {torch.float64}
    assert torch.get_default_dtype() == torch.float32


# --- a planted miscompile ----------------------------------------------------------------------


def test_planted_module_is_named_first_to_add_error(planted):
    assert planted.localization.first_divergent_module == PLANTED_PATH


def test_modules_after_the_planted_one_carry_its_error_without_adding(planted):
    walk = planted.localization.modules
    index = next(i for i, m in enumerate(walk) if m.path == PLANTED_PATH)
    after = walk[index + 1 :]
    assert after and not any(m.passes for m in after)
    assert not any(m.adds_error for m in after)


def test_modules_before_the_planted_one_pass(planted):
    walk = planted.localization.modules
    index = next(i for i, m in enumerate(walk) if m.path == PLANTED_PATH)
    assert all(m.passes for m in walk[:index])


def test_planted_module_compiled_alone_reproduces_the_divergence(planted):
    confirmation = planted.localization.confirmation
    assert confirmation.module_path == PLANTED_PATH
    assert confirmation.frames_compiled > 0
    assert confirmation.reproduced is True


def test_planted_error_is_arithmetic_not_random_numbers(planted):
    assert reading(planted).verdict == ARITHMETIC
    assert reading(planted).attribution_verdict == ARITHMETIC


def test_planted_error_fails_the_criterion_although_eager_is_close_to_fp64(planted):
    action = planted.scenario(EVAL).output("action")
    assert not action.passes
    assert action.compiled_rmse_vs_fp64 > action.bound > action.eager_rmse_vs_fp64


def test_backward_only_divergence_is_found_by_the_gradients(gradient_planted):
    localization = gradient_planted.localization
    assert all(m.passes for m in localization.modules)
    assert localization.backward_only
    assert localization.first_divergent_gradient.startswith(PLANTED_PATH + ".")


def test_backward_only_divergence_is_confirmed_alone(gradient_planted):
    confirmation = gradient_planted.localization.confirmation
    assert (confirmation.module_path, confirmation.reproduced) == (PLANTED_PATH, True)


def test_report_survives_json(planted):
    recorded = json.loads(dumps(planted))
    assert recorded["localization"]["first_divergent_module"] == PLANTED_PATH
    assert [s["name"] for s in recorded["scenarios"]] == [EVAL, AS_IS, FALLBACK_RANDOM, DROPOUT_OFF]


# --- localization only when needed -------------------------------------------------------------


def test_correct_model_passes_and_is_not_localized(correct_model):
    report = probe_divergence(correct_model, AOT_EAGER)
    assert reading(report).verdict == NONE
    assert report.localization is None


def test_localization_runs_when_asked_and_names_no_module(correct_model):
    report = probe_divergence(correct_model, AOT_EAGER, localize=True)
    assert report.localization.modules
    assert report.localization.first_divergent_module is None


# --- random numbers (Inductor) -----------------------------------------------------------------


def _snapshot(target, compiled) -> dict:
    return {
        "fallback_random": inductor_config.fallback_random,
        "functional": (F.dropout, F.scaled_dot_product_attention),
        "default_dtype": torch.get_default_dtype(),
        "target_p": [m.p for m in target.module.modules() if isinstance(m, nn.Dropout)],
        "target_training": [m.training for m in target.module.modules()],
        "compiled_training": [m.training for m in compiled.modules()],
        "compiled_weights": {k: v.clone() for k, v in compiled.state_dict().items()},
    }


@pytest.fixture(scope="module")
def dropout_run(inductor_cache):
    """A compiled copy as the diagnosis would pass it: warm, trained further, in eval mode."""
    target, settings = dropout_target(), CompileSettings()
    torch._dynamo.reset()
    compiled = target.compiled_copy(settings)
    with torch.no_grad():  # as the probe's inference runs
        target.infer(compiled.eval())
    target.loss(compiled.train()).backward()
    with torch.no_grad():
        for parameter in compiled.parameters():
            parameter.add_(0.5)
    compiled.eval()
    before = _snapshot(target, compiled)
    report = probe_divergence(target, settings, compiled=compiled)
    return report, before, _snapshot(target, compiled)


@pytest.mark.inductor
def test_dropout_difference_is_attributed_to_random_numbers(dropout_run):
    report, _, _ = dropout_run
    assert reading(report).attribution_verdict == RNG
    assert report.scenario(AS_IS).passes is False
    assert report.scenario(FALLBACK_RANDOM).passes and report.scenario(DROPOUT_OFF).passes


@pytest.mark.inductor
def test_what_ifs_compile_afresh_under_their_setting(dropout_run):
    report, _, _ = dropout_run
    fallback, dropout_off = report.scenario(FALLBACK_RANDOM), report.scenario(DROPOUT_OFF)
    assert fallback.compiled_fresh and fallback.frames_compiled > 0
    assert dropout_off.compiled_fresh and dropout_off.frames_compiled > 0
    assert fallback.numerics.inductor_fallback_random is True


@pytest.mark.inductor
def test_given_compiled_copy_is_reused_without_a_compile(dropout_run):
    report, _, _ = dropout_run
    for name in (EVAL, AS_IS):
        scenario = report.scenario(name)
        assert (scenario.compiled_fresh, scenario.frames_compiled) == (False, 0), name


@pytest.mark.inductor
def test_given_compiled_copy_is_compared_from_the_target_weights(dropout_run):
    report, _, _ = dropout_run
    assert report.scenario(EVAL).passes  # its own weights differ by 0.5 from the target's


@pytest.mark.inductor
def test_inductor_config_and_functions_are_restored(dropout_run):
    _, before, after = dropout_run
    for key in ("fallback_random", "functional", "default_dtype"):
        assert after[key] == before[key], key


@pytest.mark.inductor
def test_target_module_dropout_and_modes_are_untouched(dropout_run):
    _, before, after = dropout_run
    assert after["target_p"] == before["target_p"]
    assert after["target_training"] == before["target_training"]


@pytest.mark.inductor
def test_given_compiled_copy_gets_its_weights_and_modes_back(dropout_run):
    _, before, after = dropout_run
    assert after["compiled_training"] == before["compiled_training"]
    for key, value in before["compiled_weights"].items():
        assert torch.equal(after["compiled_weights"][key], value), key
