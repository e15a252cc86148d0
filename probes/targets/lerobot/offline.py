"""Local reads that never reach the hub.

lerobot falls back to the hub whenever a local file is missing, so every read of a local dataset
or checkpoint runs with huggingface_hub's offline switch on: a missing file then fails fast and
becomes a `TargetError` instead of a download attempt.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
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
