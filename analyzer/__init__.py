"""compile-diagnose's analyzer: rules, renderers, the command line and the Python API.

`from analyzer import diagnose_module` is the Python API (`analyzer.api`). It is imported on
first use, so that the rules and renderers stay importable without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["diagnose_module"]


def __getattr__(name: str) -> Any:
    if name == "diagnose_module":
        from analyzer.api import diagnose_module

        return diagnose_module
    raise AttributeError(f"module 'analyzer' has no attribute {name!r}")
