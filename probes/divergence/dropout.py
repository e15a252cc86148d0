"""Every dropout off, for as long as a what-if run needs it, and then back as it was.

Dropout hides in three places:
- `nn.Dropout` and its kin (`Dropout1d/2d/3d`, `AlphaDropout`, `FeatureAlphaDropout`, all
  `_DropoutNd`): their `p` attribute is set to 0;
- `nn.MultiheadAttention` keeps its attention dropout as a float attribute `dropout`, which it
  passes to `F.multi_head_attention_forward`: set to 0;
- functional calls with a literal probability (`F.dropout(x, 0.1, self.training)`,
  `F.scaled_dot_product_attention(..., dropout_p=0.1)`): the `torch.nn.functional` functions are
  replaced by wrappers that pass probability 0 while the context is open. Code that looks them up
  at call time (`F.dropout(...)`) sees the wrapper; a name bound earlier with
  `from torch.nn.functional import dropout` does not, nor does `torch.dropout`.
Train mode stays on, so batch norm and everything else that depends on it behave as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch.nn.functional as F
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from probes.records.divergence import DropoutSites

FUNCTIONAL_DROPOUT = (
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
)
SDPA = "scaled_dot_product_attention"
_SDPA_DROPOUT_INDEX = 4  # query, key, value, attn_mask, dropout_p


def dropout_sites(module: nn.Module) -> DropoutSites:
    """The dropout a module would draw random numbers for in train mode."""
    sites = DropoutSites()
    for path, sub in module.named_modules():
        if isinstance(sub, _DropoutNd) and sub.p > 0:
            sites.modules.append(path)
        elif isinstance(sub, nn.MultiheadAttention) and sub.dropout > 0:
            sites.attention.append(path)
    return sites


def _no_dropout(original: Callable[..., Any]) -> Callable[..., Any]:
    def dropout_off(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False):
        return original(input, 0.0, training, inplace)

    return dropout_off


def _no_attention_dropout(original: Callable[..., Any]) -> Callable[..., Any]:
    def attention_without_dropout(*args: Any, **kwargs: Any):
        if len(args) > _SDPA_DROPOUT_INDEX:
            args = (*args[:_SDPA_DROPOUT_INDEX], 0.0, *args[_SDPA_DROPOUT_INDEX + 1 :])
        else:
            kwargs["dropout_p"] = 0.0
        return original(*args, **kwargs)

    return attention_without_dropout


@contextmanager
def dropout_disabled(*modules: nn.Module) -> Iterator[DropoutSites]:
    """Dropout off in `modules` and in torch.nn.functional; everything restored on exit."""
    saved: list[tuple[Any, str, Any]] = []
    sites = DropoutSites()
    seen: set[int] = set()
    for module in modules:
        for path, sub in module.named_modules():
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            if isinstance(sub, _DropoutNd):
                saved.append((sub, "p", sub.p))
                sub.p = 0.0
                sites.modules.append(path)
            elif isinstance(sub, nn.MultiheadAttention):
                saved.append((sub, "dropout", sub.dropout))
                sub.dropout = 0.0
                sites.attention.append(path)
    for name in FUNCTIONAL_DROPOUT:
        saved.append((F, name, getattr(F, name)))
        setattr(F, name, _no_dropout(getattr(F, name)))
    saved.append((F, SDPA, getattr(F, SDPA)))
    setattr(F, SDPA, _no_attention_dropout(getattr(F, SDPA)))
    sites.functional = [*FUNCTIONAL_DROPOUT, SDPA]
    sites.modules = list(dict.fromkeys(sites.modules))
    sites.attention = list(dict.fromkeys(sites.attention))
    try:
        yield sites
    finally:
        for owner, attribute, value in reversed(saved):
            setattr(owner, attribute, value)
