"""What a policy needs installed beyond lerobot's core, and the one line that says how to get it.

lerobot checks its optional packages when a policy, its pre-processor or its dataset reader is
built, and raises an ImportError. Every such failure here becomes a `TargetError` in one wording:
who needs what, and the `pip install 'lerobot[extra]'` that installs it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from probes.errors import TargetError, one_line
from probes.targets.lerobot.presets import POLICIES, PolicySpec, lerobot_extra

# lerobot's require_package names the extra in its message; a bare import does not.
_EXTRA_HINT = re.compile(r"pip install '(lerobot\[[\w-]+\])'")
_MISSING_PACKAGE = re.compile(r"'([\w.-]+)' is required but not installed")


def install_line(who: str, packages: str, extra: str) -> str:
    """`policy diffusion needs diffusers, not installed; install it with: pip install '...'`."""
    return f"{who} needs {packages}, not installed; install it with: pip install '{extra}'"


def require_packages(spec: PolicySpec) -> None:
    """Fail before anything is built when the policy's optional packages are missing."""
    missing = spec.missing_packages()
    if missing:
        raise TargetError(
            install_line(f"policy {spec.name}", ", ".join(missing), spec.install_extra)
        )


@contextlib.contextmanager
def extra_required(policy_type: str) -> Iterator[None]:
    """Turn a missing optional package into a TargetError that names lerobot's extra."""
    try:
        yield
    except ImportError as error:
        hint = _EXTRA_HINT.search(str(error))
        extra = hint.group(1) if hint else policy_extra(policy_type)
        raise TargetError(
            install_line(f"policy {policy_type}", missing_package(error), extra)
        ) from error


def policy_extra(policy_type: str) -> str:
    """lerobot's extra for a policy type: its spec's when the tool knows the policy (pi0 and
    pi05 share `lerobot[pi]`), else the one named after it, as most of lerobot's extras are."""
    spec = POLICIES.get(policy_type)
    return spec.install_extra if spec is not None else lerobot_extra(policy_type)


def missing_package(error: ImportError) -> str:
    """The package an ImportError is about, as lerobot or Python names it."""
    named = _MISSING_PACKAGE.search(str(error))
    return named.group(1) if named else error.name or one_line(error)
