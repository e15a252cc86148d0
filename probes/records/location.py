"""A line of code: where a graph break, a guard or a finding points in the user's program."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceLocation:
    filename: str
    lineno: int
    function: str = ""
    code: str = ""  # the source line itself, stripped

    def __str__(self) -> str:
        where = f"{self.filename}:{self.lineno}"
        return f"{where} in {self.function}" if self.function else where

    @classmethod
    def from_record(cls, value: Any) -> SourceLocation | None:
        """The location a record holds (`{"filename", "lineno", ...}`), or None."""
        if not isinstance(value, Mapping) or not value.get("filename"):
            return None
        return cls(
            filename=str(value["filename"]),
            lineno=int(value.get("lineno") or 0),
            function=str(value.get("function") or ""),
            code=str(value.get("code") or ""),
        )
