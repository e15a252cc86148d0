"""Records of tried settings (what-ifs, levers) grouped per entry point, in a set order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def by_entry_point(records: Any, order: Sequence[str]) -> dict[str, list[Mapping[str, Any]]]:
    """Each entry point's records, in the order `order` names them (unknown names last)."""
    rank = {name: i for i, name in enumerate(order)}
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in records or []:
        if isinstance(record, Mapping):
            grouped.setdefault(str(record.get("entry_point")), []).append(record)
    for group in grouped.values():
        group.sort(key=lambda record: rank.get(str(record.get("name")), len(rank)))
    return grouped
