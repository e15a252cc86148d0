"""Real inputs for a LeRobot target: a local LeRobotDataset and a checkpoint folder (or hub id).

A diagnosis on random weights and synthetic batches says how torch.compile treats the policy's
code; a user chasing a report on *their* policy also needs their shapes, their normalised data and
their weights, because graph breaks, recompiles and numerics depend on all three. This module reads
them with lerobot's own loaders, the way `lerobot-train` does, and never reaches the hub unless a
hub id was given and allowed.

lerobot falls back to the hub whenever a local file is missing, so every local read here runs with
huggingface_hub's offline switch on: a missing file then fails fast and becomes a `TargetError`
instead of a download attempt.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lerobot.configs.types import FeatureType, PolicyFeature

from probes.errors import TargetError

INFO_FILE = Path("meta") / "info.json"
STATS_FILE = Path("meta") / "stats.json"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSOR_FILE = "policy_preprocessor.json"
# Only what a checkpoint needs; a hub repo may also hold READMEs, optimizer states or videos.
CHECKPOINT_PATTERNS = ["*.json", "*.safetensors"]
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_EXTRA_HINT = re.compile(r"pip install '(lerobot\[[\w-]+\])'")
_MISSING_PACKAGE = re.compile(r"'([\w.-]+)' is required but not installed")


@dataclass
class DatasetInputs:
    """What a policy needs from a local LeRobotDataset: its shapes, its stats, where it lives.

    `features` and `fps` keep the names of `LeRobotDatasetMetadata`'s attributes so that lerobot's
    `resolve_delta_timestamps` reads this object as it reads the metadata.
    """

    root: Path
    repo_id: str
    fps: float
    input_features: dict[str, PolicyFeature]
    output_features: dict[str, PolicyFeature]
    stats: dict[str, dict[str, Any]] = field(repr=False)
    num_frames: int
    num_episodes: int
    features: dict[str, dict] = field(default_factory=dict, repr=False)

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, ft in self.features.items() if ft.get("dtype") in ("image", "video")]


def read_dataset(root: Path, repo_id: str | None = None) -> DatasetInputs:
    """Read the metadata of a local LeRobotDataset (format v3.0, lerobot 0.6.x), offline."""
    root = Path(root).expanduser()
    _require_dataset_folder(root)
    repo_id = repo_id or f"local/{root.name}"
    metadata_cls = _dataset_api().LeRobotDatasetMetadata
    try:
        with _hub_offline():
            meta = metadata_cls(repo_id, root=root)
    except Exception as exc:
        raise TargetError(
            f"cannot read the LeRobotDataset metadata in {root / 'meta'}: {_local_failure(exc)}"
        ) from exc
    if meta.stats is None:
        raise TargetError(
            f"{root} has no {STATS_FILE}: the dataset was not finalized, and a policy's "
            "pre-processor needs its normalisation stats"
        )
    inputs, outputs = _split_policy_features(meta.features)
    return DatasetInputs(
        root=root,
        repo_id=repo_id,
        fps=float(meta.fps),
        input_features=inputs,
        output_features=outputs,
        stats=meta.stats,
        num_frames=int(meta.total_frames),
        num_episodes=int(meta.total_episodes),
        features=dict(meta.features),
    )


def apply_dataset_features(config: Any, inputs: DatasetInputs) -> None:
    """Make `config` describe the dataset's inputs and actions, as `make_policy(ds_meta=...)` does.

    Unlike `make_policy`, input features are replaced even when the config already has some: the
    config here comes from a preset with synthetic shapes, and the dataset's shapes must win.
    """
    config.output_features = dict(inputs.output_features)
    config.input_features = dict(inputs.input_features)
    action_names = inputs.features.get("action", {}).get("names")
    if hasattr(config, "action_feature_names") and action_names is not None:
        config.action_feature_names = list(action_names)
    set_metadata = getattr(config, "set_dataset_feature_metadata", None)
    if callable(set_metadata):
        set_metadata(inputs.features)


def dataset_batch(
    inputs: DatasetInputs,
    config: Any,
    batch_size: int,
    device: str,
    *,
    preprocessor: Any = None,
) -> dict[str, Any]:
    """The first `batch_size` frames of the dataset, as lerobot's training loop feeds the policy.

    Frames are consecutive from episode 0 on (crossing into later episodes when needed), with the
    `delta_timestamps` the config asks for (action chunks, observation histories and their
    `*_is_pad` masks), collated, and passed through `preprocessor` (by default the policy's own,
    built from the config and the dataset's stats), which normalises them and moves them to
    `device`. Pass the pre-processor of a loaded checkpoint to feed its weights with its own stats.
    """
    if batch_size < 1:
        raise TargetError(f"batch size must be at least 1, got {batch_size}")
    if batch_size > inputs.num_frames:
        raise TargetError(
            f"dataset {inputs.root} has {inputs.num_frames} frames, fewer than the batch size "
            f"{batch_size}"
        )
    _require_policy_fits(config, inputs)
    frames = _read_frames(inputs, config, batch_size)
    batch = torch.utils.data.default_collate(frames)
    # lerobot-train's own step between the dataloader and the pre-processor (video frames come
    # back as uint8 when decoded with return_uint8=True).
    for key in inputs.camera_keys:
        if key in batch and batch[key].dtype == torch.uint8:
            batch[key] = batch[key].to(torch.float32) / 255.0
    if preprocessor is None:
        preprocessor = _policy_preprocessor(config, inputs.stats)
    _retarget_device(preprocessor, device)
    return _to_device(preprocessor(batch), device)


def load_pretrained(path_or_id: str, device: str, *, allow_hub: bool) -> tuple[Any, Any, Any]:
    """Load a LeRobot checkpoint: (policy in eval mode, its config, its pre-processor).

    A local folder (what `policy.save_pretrained` and the processors' `save_pretrained` write, e.g.
    a training run's `checkpoints/last/pretrained_model`) loads offline. Anything else is taken for
    a hub id, downloaded only when `allow_hub` is true.
    """
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        folder = path
    elif path.exists():
        raise TargetError(f"{path} is a file; expected a LeRobot checkpoint folder")
    elif not _HUB_ID.match(str(path_or_id)):
        raise TargetError(f"checkpoint folder {path} does not exist")
    else:
        folder = _download_checkpoint(str(path_or_id), allow_hub=allow_hub)
    return _load_checkpoint_folder(folder, device)


# --- datasets --------------------------------------------------------------------------------


def _dataset_api() -> Any:
    """lerobot.datasets, imported late: it needs lerobot's `dataset` extra, a diagnosis does not."""
    try:
        import lerobot.datasets as lerobot_datasets
    except ImportError as exc:
        raise TargetError(
            f"reading a LeRobotDataset needs {_missing_package(exc)}, which is not installed; "
            "install it with pip install 'lerobot[dataset]'"
        ) from exc
    return lerobot_datasets


def _require_dataset_folder(root: Path) -> None:
    if not root.exists():
        raise TargetError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise TargetError(f"{root} is a file; expected a LeRobotDataset folder")
    if not (root / INFO_FILE).is_file():
        raise TargetError(
            f"{root} is not a LeRobotDataset: {INFO_FILE} is missing (a dataset written by "
            "LeRobotDataset.create(...) and finalize() has it)"
        )


def _split_policy_features(
    features: dict[str, dict],
) -> tuple[dict[str, PolicyFeature], dict[str, PolicyFeature]]:
    from lerobot.utils.feature_utils import dataset_to_policy_features

    try:
        policy_features = dataset_to_policy_features(features)
    except ValueError as exc:
        raise TargetError(f"dataset features do not fit a policy: {_one_line(exc)}") from exc
    outputs = {k: ft for k, ft in policy_features.items() if ft.type is FeatureType.ACTION}
    inputs = {k: ft for k, ft in policy_features.items() if k not in outputs}
    return inputs, outputs


def _require_policy_fits(config: Any, inputs: DatasetInputs) -> None:
    """Every feature the policy reads or predicts must be in the dataset, with the same shape."""
    dataset_features = {**inputs.input_features, **inputs.output_features}
    wanted = {**config.input_features, **config.output_features}
    if not wanted:
        raise ValueError("the policy config has no features: call apply_dataset_features first")
    missing = sorted(k for k in wanted if k not in dataset_features)
    if missing:
        raise TargetError(
            f"dataset {inputs.root} lacks features the policy needs: {', '.join(missing)}"
        )
    for key, feature in wanted.items():
        if tuple(feature.shape) != tuple(dataset_features[key].shape):
            raise TargetError(
                f"{key} has shape {tuple(dataset_features[key].shape)} in dataset {inputs.root} "
                f"but the policy expects {tuple(feature.shape)}"
            )


def _delta_timestamps(inputs: DatasetInputs, config: Any) -> dict[str, list[float]] | None:
    from lerobot.datasets.factory import resolve_delta_timestamps

    return resolve_delta_timestamps(config, inputs)


def _read_frames(inputs: DatasetInputs, config: Any, count: int) -> list[dict[str, Any]]:
    dataset_cls = _dataset_api().LeRobotDataset
    if not any((inputs.root / "data").glob("*/*.parquet")):
        raise TargetError(
            f"dataset {inputs.root} has no frames: data/chunk-*/file-*.parquet is missing"
        )
    delta_timestamps = _delta_timestamps(inputs, config)
    try:
        with _hub_offline():
            dataset = dataset_cls(
                inputs.repo_id,
                root=inputs.root,
                delta_timestamps=delta_timestamps,
                return_uint8=True,  # as lerobot-train reads it
            )
            return [dataset[i] for i in range(count)]
    except Exception as exc:
        raise TargetError(
            f"cannot read frames from dataset {inputs.root}: {_local_failure(exc)}"
        ) from exc


def _policy_preprocessor(config: Any, stats: dict[str, dict[str, Any]] | None) -> Any:
    from lerobot.policies.factory import make_pre_post_processors

    with _extra_required(config.type):
        preprocessor, _ = make_pre_post_processors(config, dataset_stats=stats)
    return preprocessor


# --- checkpoints -----------------------------------------------------------------------------


def _download_checkpoint(repo_id: str, *, allow_hub: bool) -> Path:
    if not allow_hub:
        raise TargetError(
            f"{repo_id} is not a local folder and hub downloads are off; "
            "a local checkpoint folder works offline"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=CHECKPOINT_PATTERNS))
    except Exception as exc:
        raise TargetError(
            f"hub id {repo_id} could not be downloaded ({_one_line(exc)}), and no local folder "
            "has that name; a local checkpoint folder works offline"
        ) from exc


def _load_checkpoint_folder(folder: Path, device: str) -> tuple[Any, Any, Any]:
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise TargetError(
                f"{folder} is not a LeRobot checkpoint: {name} is missing (expected the folder "
                "written by policy.save_pretrained)"
            )
    config = _read_policy_config(folder)
    config.device = device
    # As `--policy.path` does in lerobot's scripts: some policies fetch base weights at build
    # time unless they know they are being restored from a checkpoint.
    config.pretrained_path = folder
    policy = _read_policy(folder, config)
    preprocessor = _checkpoint_preprocessor(folder, config)
    _retarget_device(preprocessor, device)
    return policy, config, preprocessor


def _read_policy_config(folder: Path) -> Any:
    from lerobot.configs.policies import PreTrainedConfig

    try:
        with _hub_offline():
            return PreTrainedConfig.from_pretrained(folder)
    except Exception as exc:
        raise TargetError(
            f"cannot read the policy config {folder / CONFIG_FILE}: {_one_line(exc)}"
        ) from exc


def _read_policy(folder: Path, config: Any) -> Any:
    from lerobot.policies.factory import get_policy_class

    with _extra_required(config.type):
        policy_cls = get_policy_class(config.type)
        try:
            # from_pretrained prints where it loads from; nothing below the CLI prints.
            with _hub_offline(), contextlib.redirect_stdout(io.StringIO()):
                return policy_cls.from_pretrained(folder, config=config)
        except ImportError:
            raise
        except Exception as exc:
            raise TargetError(
                f"cannot load the {config.type} weights in {folder / WEIGHTS_FILE}: "
                f"{_one_line(exc)}"
            ) from exc


def _checkpoint_preprocessor(folder: Path, config: Any) -> Any:
    """The checkpoint's own pre-processor (its stats) when saved, else one built from the config."""
    from lerobot.policies.factory import make_pre_post_processors

    if not (folder / PREPROCESSOR_FILE).is_file():
        return _policy_preprocessor(config, stats=None)
    try:
        with _extra_required(config.type), _hub_offline():
            preprocessor, _ = make_pre_post_processors(config, pretrained_path=str(folder))
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(
            f"cannot load the pre-processor {folder / PREPROCESSOR_FILE}: {_one_line(exc)}"
        ) from exc
    return preprocessor


# --- shared ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Refuse every hub request for the duration, then restore the caller's setting.

    huggingface_hub reads HF_HUB_OFFLINE once, at import, into `constants.HF_HUB_OFFLINE`, and
    checks that constant before each request; the environment variable is set as well for
    libraries that read it later.
    """
    from huggingface_hub import constants as hub_constants

    saved_flag = hub_constants.HF_HUB_OFFLINE
    saved_env = os.environ.get("HF_HUB_OFFLINE")
    hub_constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = saved_flag
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


@contextlib.contextmanager
def _extra_required(policy_type: str) -> Iterator[None]:
    """Turn a missing optional package into a TargetError that names lerobot's extra."""
    try:
        yield
    except ImportError as exc:
        # lerobot's require_package names the extra; a bare import does not, and lerobot's
        # extras are mostly named after the policy.
        hint = _EXTRA_HINT.search(str(exc))
        extra = hint.group(1) if hint else f"lerobot[{policy_type}]"
        raise TargetError(
            f"policy {policy_type} needs {_missing_package(exc)}, which is not installed; "
            f"install it with pip install '{extra}'"
        ) from exc


def _missing_package(exc: ImportError) -> str:
    named = _MISSING_PACKAGE.search(str(exc))
    return named.group(1) if named else exc.name or _one_line(exc)


def _retarget_device(preprocessor: Any, device: str) -> None:
    """Point the pre-processor's device step at `device`, whatever device it was saved with.

    lerobot-eval does the same with an override of `device_processor`; an override fails when a
    pipeline has no such step, so the step is replaced here instead.
    """
    from lerobot.processor import DeviceProcessorStep

    preprocessor.steps = [
        DeviceProcessorStep(device=device, float_dtype=step.float_dtype)
        if isinstance(step, DeviceProcessorStep)
        else step
        for step in preprocessor.steps
    ]


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    # lerobot's default pipelines move everything; a custom or older one may have no device step.
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _local_failure(exc: BaseException) -> str:
    """Why a local read failed: lerobot answers a missing local file by asking the hub."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    if not isinstance(exc, OfflineModeIsEnabled):
        return _one_line(exc)
    cause = exc.__context__
    while cause is not None and not isinstance(cause, FileNotFoundError):
        cause = cause.__context__
    if cause is not None and cause.filename:
        return f"{cause.filename} is missing"
    return "files are missing (lerobot looked for them on the hub, never used for a local path)"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
