"""The ACT target: built offline from its config, batches shaped by its features, no sharing."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_act

from probes.errors import TargetError
from probes.targets.lerobot.policy import PolicyRequest, build_target
from probes.targets.target import CompileSettings


def test_act_builds_offline_with_random_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = tiny_act()
    assert target.description["weights"].startswith("random")
    assert target.module.config.pretrained_backbone_weights is None
    assert target.entry_points == ["inference", "training"]


def test_training_batch_has_action_chunk_and_padding_mask(act_target) -> None:
    loss = act_target.loss(act_target.fresh_copy())
    config = act_target.module.config
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert config.chunk_size == 10 and config.use_vae is False


def test_inference_returns_one_action_per_batch_item(act_target) -> None:
    with torch.no_grad():
        action = act_target.infer(act_target.fresh_copy())
    assert action.shape == (2, 6)


def test_same_seed_gives_same_initial_weights() -> None:
    first, second = tiny_act(), tiny_act()
    for a, b in zip(first.module.parameters(), second.module.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("how", ["model", "methods", "wrapper"])
def test_eager_and_compiled_copies_share_no_storage(act_target, how: str) -> None:
    eager = act_target.fresh_copy()
    compiled = act_target.compiled_copy(CompileSettings(backend="aot_eager", how=how))
    eager_storage = {t.untyped_storage().data_ptr() for t in eager.state_dict().values()}
    compiled_storage = {t.untyped_storage().data_ptr() for t in compiled.state_dict().values()}
    assert not eager_storage & compiled_storage
    eager.reset(), compiled.reset()
    assert eager._action_queue is not getattr(compiled, "_orig_mod", compiled)._action_queue


def test_policy_override_reaches_the_config() -> None:
    target = tiny_act(use_vae="true", dim_model="48")
    assert target.module.config.use_vae is True
    assert target.module.config.dim_model == 48


def test_unknown_override_field_is_rejected_with_the_field_name() -> None:
    with pytest.raises(TargetError, match="no field 'not_a_field'"):
        tiny_act(not_a_field="1")


def test_unknown_policy_lists_the_known_ones() -> None:
    with pytest.raises(TargetError, match="known policies: act"):
        build_target(PolicyRequest(policy="nope", device=torch.device("cpu")))


def test_cpu_without_preset_uses_the_cpu_preset_and_says_so() -> None:
    target, preset = build_target(PolicyRequest(policy="act", device=torch.device("cpu")))
    assert preset.name == "cpu"
    assert any("CPU preset" in note for note in target.notes)
