"""Read a recorded diagnosis back: a `diagnosis.json`, or the folder a run wrote it to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analyzer.diagnosis import DIAGNOSIS_FILE, SCHEMA_VERSION
from analyzer.errors import InputFileError
from probes.records.serialize import non_finite_constant

# Keys every diagnosis.json holds, whatever probes ran.
_DIAGNOSIS_KEYS = ("schema_version", "target", "probes", "findings")


def diagnosis_file(path: Path) -> Path:
    """The diagnosis.json a path names: the file itself, or the one in the folder."""
    if path.is_dir():
        file = path / DIAGNOSIS_FILE
        if not file.is_file():
            raise InputFileError(f"{path}: a folder without {DIAGNOSIS_FILE}")
        return file
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder")
    return path


def read_diagnosis(path: Path) -> dict[str, Any]:
    """The recorded diagnosis at `path`, as JSON; one line (InputFileError) when it is not one."""
    file = diagnosis_file(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"{file}: not a text file, so not a diagnosis") from None
    except OSError as error:
        raise InputFileError(f"{file}: cannot read it ({error.strerror})") from None
    try:
        record = json.loads(text, parse_constant=non_finite_constant)
    except json.JSONDecodeError as error:
        raise InputFileError(f"{file}: not JSON ({error.msg}, line {error.lineno})") from None
    missing = [key for key in _DIAGNOSIS_KEYS if not isinstance(record, dict) or key not in record]
    if missing:
        raise InputFileError(f"{file}: not a compile-diagnose diagnosis (no {', '.join(missing)})")
    if record["schema_version"] != SCHEMA_VERSION:
        raise InputFileError(
            f"{file}: diagnosis schema {record['schema_version']}, this compile-diagnose reads "
            f"schema {SCHEMA_VERSION}"
        )
    return record
