"""A local LeRobotDataset as the source of a diagnosis's shapes, stats and batches.

A diagnosis on synthetic batches says how torch.compile treats the policy's code; a user chasing
a report on *their* policy also needs their shapes and their normalised data, because graph
breaks, recompiles and numerics depend on them. The dataset is read with lerobot's own loaders,
the way `lerobot-train` reads it, offline (`hub_offline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from probes.errors import TargetError, one_line
from probes.targets.lerobot.offline import hub_offline
from probes.targets.lerobot.packages import install_line, missing_package
from probes.targets.lerobot.preprocessor import policy_preprocessor, retarget_device

if TYPE_CHECKING:  # lerobot is imported when a dataset is read, not when this module is
    from lerobot.configs.types import PolicyFeature

INFO_FILE = Path("meta") / "info.json"
STATS_FILE = Path("meta") / "stats.json"


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
        with hub_offline():
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
        preprocessor = policy_preprocessor(config, inputs.stats)
    retarget_device(preprocessor, device)
    return _to_device(preprocessor(batch), device)


def _dataset_api() -> Any:
    """lerobot.datasets, imported late: it needs lerobot's `dataset` extra, a diagnosis does not."""
    try:
        import lerobot.datasets as lerobot_datasets
    except ImportError as exc:
        raise TargetError(
            install_line("reading a LeRobotDataset", missing_package(exc), "lerobot[dataset]")
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
    from lerobot.configs.types import FeatureType
    from lerobot.utils.feature_utils import dataset_to_policy_features

    try:
        policy_features = dataset_to_policy_features(features)
    except ValueError as exc:
        raise TargetError(f"dataset features do not fit a policy: {one_line(exc)}") from exc
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


def _read_frames(inputs: DatasetInputs, config: Any, count: int) -> list[dict[str, Any]]:
    dataset_cls = _dataset_api().LeRobotDataset
    if not any((inputs.root / "data").glob("*/*.parquet")):
        raise TargetError(
            f"dataset {inputs.root} has no frames: data/chunk-*/file-*.parquet is missing"
        )
    from lerobot.datasets.factory import resolve_delta_timestamps  # after _dataset_api's check

    delta_timestamps = resolve_delta_timestamps(config, inputs)
    try:
        with hub_offline():
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


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    # lerobot's default pipelines move everything; a custom or older one may have no device step.
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _local_failure(exc: BaseException) -> str:
    """Why a local read failed: lerobot answers a missing local file by asking the hub."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    if not isinstance(exc, OfflineModeIsEnabled):
        return one_line(exc)
    cause = exc.__context__
    while cause is not None and not isinstance(cause, FileNotFoundError):
        cause = cause.__context__
    if cause is not None and cause.filename:
        return f"{cause.filename} is missing"
    return "files are missing (lerobot looked for them on the hub, never used for a local path)"
