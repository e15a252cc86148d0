"""Local LeRobot datasets and checkpoint folders as inputs of a diagnosis, read offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants as hub_constants
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.utils.constants import ACTION
from safetensors.torch import save_file
from tiny_lerobot import (
    CAMERA,
    DIM,
    IMAGE_HW,
    STATE,
    TinyDataset,
    tiny_act_config,
    write_tiny_act_checkpoint,
    write_tiny_dataset,
)

from probes.errors import TargetError, one_line
from probes.targets.lerobot.checkpoint import load_pretrained
from probes.targets.lerobot.dataset import (
    DatasetInputs,
    apply_dataset_features,
    dataset_batch,
    read_dataset,
)
from probes.targets.lerobot.packages import policy_extra

CHUNK = 5  # tiny_act_config's chunk_size
EPISODE = 30


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach the hub: turn huggingface_hub's own offline switch on."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable at import; the constant is what it checks per request.
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyDataset:
    return write_tiny_dataset(tmp_path_factory.mktemp("data"), episode_lengths=(EPISODE, EPISODE))


@pytest.fixture(scope="session")
def inputs(tiny: TinyDataset) -> DatasetInputs:
    return read_dataset(tiny.root)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, inputs: DatasetInputs) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "pretrained_model"
    write_tiny_act_checkpoint(folder, inputs.input_features, inputs.output_features, inputs.stats)
    return folder


def act_config_for(inputs: DatasetInputs):
    config = tiny_act_config()
    apply_dataset_features(config, inputs)
    return config


def normalised(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean/std normalisation with stats computed here from the frames written."""
    return (values - reference.mean(axis=0)) / reference.std(axis=0)


def assert_one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


# --- reading a dataset ---------------------------------------------------------------------


def test_read_dataset_gives_policy_features_and_frame_count(inputs: DatasetInputs) -> None:
    assert inputs.input_features == {
        STATE: PolicyFeature(FeatureType.STATE, (DIM,)),
        CAMERA: PolicyFeature(FeatureType.VISUAL, (3, IMAGE_HW, IMAGE_HW)),
    }
    assert inputs.output_features == {ACTION: PolicyFeature(FeatureType.ACTION, (DIM,))}
    assert (inputs.num_frames, inputs.num_episodes, inputs.fps) == (2 * EPISODE, 2, 10.0)


def test_read_dataset_names_it_after_its_folder_when_no_repo_id(inputs: DatasetInputs) -> None:
    assert inputs.repo_id == "local/tiny_dataset"


def test_read_dataset_gives_the_stats_of_the_frames(tiny: TinyDataset, inputs: DatasetInputs):
    np.testing.assert_allclose(inputs.stats[STATE]["mean"], tiny.states.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(inputs.stats[STATE]["std"], tiny.states.std(axis=0), rtol=1e-5)


def test_read_dataset_restores_the_callers_hub_setting(
    tiny: TinyDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    read_dataset(tiny.root)
    assert hub_constants.HF_HUB_OFFLINE is False


# --- building a config and a batch from it -------------------------------------------------


def test_apply_dataset_features_replaces_preset_shapes(inputs: DatasetInputs) -> None:
    config = tiny_act_config(
        {CAMERA: PolicyFeature(FeatureType.VISUAL, (3, 480, 640))},
        {ACTION: PolicyFeature(FeatureType.ACTION, (14,))},
    )
    apply_dataset_features(config, inputs)
    assert config.image_features[CAMERA].shape == (3, IMAGE_HW, IMAGE_HW)
    assert config.robot_state_feature.shape == (DIM,)
    assert config.action_feature.shape == (DIM,)


def test_batch_has_the_policys_keys_and_shapes(inputs: DatasetInputs) -> None:
    batch = dataset_batch(inputs, act_config_for(inputs), batch_size=4, device="cpu")
    assert batch[STATE].shape == (4, DIM)
    assert batch[CAMERA].shape == (4, 3, IMAGE_HW, IMAGE_HW)
    assert batch[ACTION].shape == (4, CHUNK, DIM)
    assert batch["action_is_pad"].shape == (4, CHUNK)
    assert batch["action_is_pad"].dtype == torch.bool


def test_batch_state_and_action_chunk_are_normalised_with_dataset_stats(
    tiny: TinyDataset, inputs: DatasetInputs
) -> None:
    batch = dataset_batch(inputs, act_config_for(inputs), batch_size=4, device="cpu")
    expected_state = normalised(tiny.states, tiny.states)[:4]
    actions = normalised(tiny.actions, tiny.actions)
    expected_chunks = np.stack([actions[i : i + CHUNK] for i in range(4)])
    np.testing.assert_allclose(batch[STATE].numpy(), expected_state, atol=1e-4)
    np.testing.assert_allclose(batch[ACTION].numpy(), expected_chunks, atol=1e-4)


def test_batch_images_are_normalised_with_dataset_stats(
    tiny: TinyDataset, inputs: DatasetInputs
) -> None:
    batch = dataset_batch(inputs, act_config_for(inputs), batch_size=2, device="cpu")
    pixels = tiny.images[:2].transpose(0, 3, 1, 2) / 255.0
    stats = inputs.stats[CAMERA]
    expected = (pixels - stats["mean"][None]) / stats["std"][None]
    np.testing.assert_allclose(batch[CAMERA].numpy(), expected, atol=1e-4)


def test_action_is_pad_marks_steps_past_the_episode_end(inputs: DatasetInputs) -> None:
    batch = dataset_batch(inputs, act_config_for(inputs), batch_size=EPISODE, device="cpu")
    last_frame = batch["action_is_pad"][EPISODE - 1].tolist()
    assert last_frame == [False] + [True] * (CHUNK - 1)
    assert not batch["action_is_pad"][: EPISODE - CHUNK + 1].any()


def test_batch_larger_than_an_episode_continues_into_the_next(inputs: DatasetInputs) -> None:
    batch = dataset_batch(inputs, act_config_for(inputs), batch_size=EPISODE + 3, device="cpu")
    assert batch["episode_index"].tolist() == [0] * EPISODE + [1] * 3


def test_act_built_for_the_dataset_returns_a_finite_loss(inputs: DatasetInputs) -> None:
    config = act_config_for(inputs)
    policy = ACTPolicy(config)
    policy.train()
    loss, _ = policy.forward(dataset_batch(inputs, config, batch_size=4, device="cpu"))
    assert torch.isfinite(loss)


# --- loading a checkpoint ------------------------------------------------------------------


def test_loaded_checkpoint_has_the_saved_weights(checkpoint: Path) -> None:
    saved = ACTPolicy.from_pretrained(checkpoint)  # lerobot's own loader, as the reference
    policy, config, _ = load_pretrained(str(checkpoint), "cpu", allow_hub=False)
    name = "model.action_head.weight"
    assert config.type == "act"
    assert torch.equal(policy.state_dict()[name], saved.state_dict()[name])
    assert policy.state_dict()[name].abs().sum() > 0


def test_loaded_checkpoint_weights_differ_from_a_fresh_policy(checkpoint: Path) -> None:
    policy, config, _ = load_pretrained(str(checkpoint), "cpu", allow_hub=False)
    torch.manual_seed(123)
    fresh = ACTPolicy(config)
    name = "model.action_head.weight"
    assert not torch.equal(policy.state_dict()[name], fresh.state_dict()[name])


def test_loaded_checkpoint_selects_an_action_from_a_dataset_batch(
    checkpoint: Path, inputs: DatasetInputs
) -> None:
    policy, config, preprocessor = load_pretrained(str(checkpoint), "cpu", allow_hub=False)
    batch = dataset_batch(inputs, config, batch_size=2, device="cpu", preprocessor=preprocessor)
    with torch.no_grad():
        action = policy.select_action({k: v for k, v in batch.items() if k.startswith("obs")})
    assert action.shape == (2, DIM)
    assert torch.isfinite(action).all()


def test_loaded_preprocessor_normalises_with_the_checkpoints_stats(
    tmp_path: Path, tiny: TinyDataset, inputs: DatasetInputs
) -> None:
    shifted = {k: dict(v) for k, v in inputs.stats.items()}
    shifted[STATE]["mean"] = inputs.stats[STATE]["mean"] + 1.0
    folder = tmp_path / "shifted"
    write_tiny_act_checkpoint(folder, inputs.input_features, inputs.output_features, shifted)
    _, config, preprocessor = load_pretrained(str(folder), "cpu", allow_hub=False)
    batch = dataset_batch(inputs, config, batch_size=2, device="cpu", preprocessor=preprocessor)
    expected = (tiny.states[:2] - shifted[STATE]["mean"]) / shifted[STATE]["std"]
    np.testing.assert_allclose(batch[STATE].numpy(), expected, atol=1e-4)


def test_checkpoint_without_saved_preprocessor_gets_one_from_its_config(
    tmp_path: Path, checkpoint: Path
) -> None:
    folder = tmp_path / "weights_only"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(checkpoint / name, folder / name)
    _, _, preprocessor = load_pretrained(str(folder), "cpu", allow_hub=False)
    step_names = [type(step).__name__ for step in preprocessor.steps]
    assert "NormalizerProcessorStep" in step_names


# --- bad input: one line each, nothing downloaded -------------------------------------------


def test_missing_dataset_folder_is_a_target_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(TargetError) as excinfo:
        read_dataset(missing)
    assert_one_line_error(excinfo, str(missing), "does not exist")
    assert not missing.exists()


def test_folder_that_is_not_a_dataset_is_a_target_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError) as excinfo:
        read_dataset(tmp_path)
    assert_one_line_error(excinfo, str(tmp_path), "meta/info.json")


def test_unreadable_dataset_metadata_is_a_target_error(tmp_path: Path) -> None:
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text("{not json")
    with pytest.raises(TargetError) as excinfo:
        read_dataset(tmp_path)
    assert_one_line_error(excinfo, str(tmp_path / "meta"))


def test_too_few_frames_for_the_batch_is_a_target_error(inputs: DatasetInputs) -> None:
    with pytest.raises(TargetError) as excinfo:
        dataset_batch(inputs, act_config_for(inputs), batch_size=2 * EPISODE + 1, device="cpu")
    assert_one_line_error(excinfo, str(2 * EPISODE), str(2 * EPISODE + 1))


def test_dataset_without_a_feature_the_policy_needs_is_a_target_error(
    inputs: DatasetInputs,
) -> None:
    config = act_config_for(inputs)
    wrist = "observation.images.wrist"
    config.input_features[wrist] = PolicyFeature(FeatureType.VISUAL, (3, IMAGE_HW, IMAGE_HW))
    with pytest.raises(TargetError) as excinfo:
        dataset_batch(inputs, config, batch_size=2, device="cpu")
    assert_one_line_error(excinfo, wrist)


def test_checkpoint_folder_without_config_is_a_target_error(tmp_path: Path, checkpoint: Path):
    shutil.copy(checkpoint / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(TargetError) as excinfo:
        load_pretrained(str(tmp_path), "cpu", allow_hub=False)
    assert_one_line_error(excinfo, str(tmp_path), "config.json")


def test_checkpoint_folder_without_weights_is_a_target_error(tmp_path: Path, checkpoint: Path):
    shutil.copy(checkpoint / "config.json", tmp_path / "config.json")
    with pytest.raises(TargetError) as excinfo:
        load_pretrained(str(tmp_path), "cpu", allow_hub=False)
    assert_one_line_error(excinfo, str(tmp_path), "model.safetensors")


def test_missing_local_checkpoint_path_is_a_target_error(tmp_path: Path) -> None:
    missing = tmp_path / "outputs" / "checkpoints" / "last" / "pretrained_model"
    with pytest.raises(TargetError) as excinfo:
        load_pretrained(str(missing), "cpu", allow_hub=True)
    assert_one_line_error(excinfo, str(missing), "does not exist")


def test_hub_id_without_hub_access_is_a_target_error() -> None:
    with pytest.raises(TargetError) as excinfo:
        load_pretrained("someone/some-policy", "cpu", allow_hub=False)
    assert_one_line_error(excinfo, "someone/some-policy", "local checkpoint folder")


def test_hub_id_that_cannot_be_downloaded_is_a_target_error() -> None:
    with pytest.raises(TargetError) as excinfo:
        load_pretrained("nobody-here/no-such-policy", "cpu", allow_hub=True)
    assert_one_line_error(excinfo, "nobody-here/no-such-policy", "could not be downloaded")


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("diffusers") is not None,
    reason="diffusers is installed, so lerobot[diffusion] is not missing",
)
def test_policy_needing_a_missing_extra_names_the_extra(tmp_path: Path) -> None:
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

    config = DiffusionConfig(device="cpu")
    config._save_pretrained(tmp_path)
    save_file({"placeholder": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    assert json.loads((tmp_path / "config.json").read_text())["type"] == "diffusion"
    with pytest.raises(TargetError) as excinfo:
        load_pretrained(str(tmp_path), "cpu", allow_hub=False)
    assert_one_line_error(excinfo, "pip install 'lerobot[diffusion]'")


def test_a_quoted_error_is_joined_onto_one_line_and_capped() -> None:
    assert one_line(ValueError("bad shape\n  expected (2, 3)")) == "bad shape expected (2, 3)"
    assert one_line(ValueError("")) == "ValueError"
    long = one_line(ValueError("x" * 400))
    assert len(long) == 300 and long.endswith("...")
    assert one_line(ValueError("x" * 300)) == "x" * 300


def test_a_missing_package_names_the_extra_of_the_policys_spec() -> None:
    assert policy_extra("pi05") == policy_extra("pi0") == "lerobot[pi]"
    assert policy_extra("diffusion") == "lerobot[diffusion]"
    assert policy_extra("not-a-listed-policy") == "lerobot[not-a-listed-policy]"
