"""A LeRobot checkpoint as the weights of a diagnosis: a local folder, or a hub id when named.

A local folder is what `policy.save_pretrained` and the processors' `save_pretrained` write (e.g.
a training run's `checkpoints/last/pretrained_model`); it loads offline (`hub_offline`). Anything
else is taken for a hub id and downloaded only when the caller allows it.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

from probes.errors import TargetError, one_line
from probes.targets.lerobot.offline import hub_offline
from probes.targets.lerobot.packages import extra_required
from probes.targets.lerobot.preprocessor import policy_preprocessor, retarget_device

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSOR_FILE = "policy_preprocessor.json"
# Only what a checkpoint needs; a hub repo may also hold READMEs, optimizer states or videos.
CHECKPOINT_PATTERNS = ["*.json", "*.safetensors"]
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def load_pretrained(path_or_id: str, device: str, *, allow_hub: bool) -> tuple[Any, Any, Any]:
    """Load a LeRobot checkpoint: (policy in eval mode, its config, its pre-processor)."""
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
            f"hub id {repo_id} could not be downloaded ({one_line(exc)}), and no local folder "
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
    retarget_device(preprocessor, device)
    return policy, config, preprocessor


def _read_policy_config(folder: Path) -> Any:
    from lerobot.configs.policies import PreTrainedConfig

    try:
        with hub_offline():
            return PreTrainedConfig.from_pretrained(folder)
    except Exception as exc:
        raise TargetError(
            f"cannot read the policy config {folder / CONFIG_FILE}: {one_line(exc)}"
        ) from exc


def _read_policy(folder: Path, config: Any) -> Any:
    from lerobot.policies.factory import get_policy_class

    with extra_required(config.type):
        policy_cls = get_policy_class(config.type)
        try:
            # from_pretrained prints where it loads from; nothing below the CLI prints.
            with hub_offline(), contextlib.redirect_stdout(io.StringIO()):
                return policy_cls.from_pretrained(folder, config=config)
        except ImportError:
            raise  # a missing optional package: extra_required names what to install
        except Exception as exc:
            raise TargetError(
                f"cannot load the {config.type} weights in {folder / WEIGHTS_FILE}: {one_line(exc)}"
            ) from exc


def _checkpoint_preprocessor(folder: Path, config: Any) -> Any:
    """The checkpoint's own pre-processor (its stats) when saved, else one built from the config."""
    from lerobot.policies.factory import make_pre_post_processors

    if not (folder / PREPROCESSOR_FILE).is_file():
        return policy_preprocessor(config, stats=None)
    try:
        with extra_required(config.type), hub_offline():
            preprocessor, _ = make_pre_post_processors(config, pretrained_path=str(folder))
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(
            f"cannot load the pre-processor {folder / PREPROCESSOR_FILE}: {one_line(exc)}"
        ) from exc
    return preprocessor
