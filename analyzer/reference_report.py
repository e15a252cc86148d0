"""Read a benchmark report in the reference format into a `BenchmarkReport`.

The reference format is what LeRobot's `benchmarks/policies_compilation/` script writes: Markdown
with a "Raw Data" ```json block, or that JSON alone. Reports in the wild lack keys, hold nulls,
NaN and Infinity (Python's `json` writes them), or a compile error instead of figures: all of
that reads into `None` or a float, never a crash. A file that is not such a report raises
`InputFileError` with one line.

The numeric settings of the run (`RunSettings`) are read where the report states them: as Raw
Data keys named after the options of LeRobot's December 2025 script, or from that script's
command line quoted in the Markdown. The script itself records none of them, so they are most
often absent, and triage says what it assumed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from analyzer.errors import InputFileError
from probes.records.reference import REFERENCE_TOLERANCE, REPORT_KEYS
from probes.records.serialize import finite_or_marker, non_finite_constant

# A JSON object with none of these is not a benchmark report (policy/device alone say nothing).
_FIGURE_KEYS = frozenset(REPORT_KEYS) - {"policy", "device", "pytorch_version"}

_FENCE = re.compile(r"^(`{3,})[ \t]*(\w*)[ \t]*\n(.*?)^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_RAW_DATA_HEADING = re.compile(r"^#+.*raw data", re.IGNORECASE | re.MULTILINE)
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"

# Optional Raw Data keys with the run's settings, named as the script's options (`vars(args)`);
# their absence is not a missing figure.
DEVICE_NAME_KEY = "device_name"  # torch.cuda.get_device_name(), e.g. "NVIDIA GeForce RTX 4090"
DTYPE_KEY = "dtype"
DISABLE_DROPOUT_KEY = "disable_dropout"  # --disable-dropout
DISABLE_CUDNN_TF32_KEY = "disable_cudnn_tf32"  # --disable-cudnn-tf32
MATMUL_PRECISION_KEY = "matmul_precision"  # --matmul-precision
MATMUL_PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision's values
# The script's command line in the Markdown: `--policy` is its one required option.
_COMMAND_LINE = re.compile(r"^.*\s--policy[\s=]\S+.*$", re.MULTILINE)
_MATMUL_PRECISION_OPTION = re.compile(rf"--matmul-precision[\s=]+({'|'.join(MATMUL_PRECISIONS)})\b")


@dataclass
class Correctness:
    inference_correct: bool | None = None
    training_correct: bool | None = None
    action_diff: float | None = None  # max |eager - compiled| over the actions, absolute
    loss_diff: float | None = None  # |eager - compiled| training loss, absolute


@dataclass
class RunSettings:
    """The run's numeric settings as the report states them; None where it does not say."""

    device_name: str | None = None
    dtype: str | None = None
    dropout_disabled: bool | None = None  # --disable-dropout
    cudnn_allow_tf32: bool | None = None  # torch.backends.cudnn.allow_tf32
    matmul_precision: str | None = None  # torch.set_float32_matmul_precision's argument


@dataclass
class BenchmarkReport:
    """One report's figures. Times are milliseconds per call; None where the report has none."""

    source: str
    success: bool | None = None
    policy: str | None = None
    device: str | None = None
    pytorch_version: str | None = None
    compilation_successful: bool | None = None
    compilation_error: str | None = None
    correctness: Correctness = field(default_factory=Correctness)
    correctness_passed: bool | None = None
    inference_benchmarked: bool | None = None
    training_benchmarked: bool | None = None
    time_original_inference: float | None = None
    time_compiled_inference: float | None = None
    speedup_inference: float | None = None
    time_original_training: float | None = None
    time_compiled_training: float | None = None
    speedup_training: float | None = None
    loss_consistency: float | None = None
    grad_norm_consistency: float | None = None
    # From the Markdown around the JSON, where there is some.
    action_threshold: float = REFERENCE_TOLERANCE
    loss_threshold: float = REFERENCE_TOLERANCE
    batch_size: int | None = None
    inference_runs: int | None = None
    training_runs: int | None = None
    dataset: str | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    # Reference keys the JSON lacks or holds null, and keys whose value had the wrong type.
    missing: tuple[str, ...] = ()
    malformed: tuple[str, ...] = ()


@dataclass(frozen=True)
class _MarkdownContext:
    action_threshold: float | None = None
    loss_threshold: float | None = None
    batch_size: int | None = None
    inference_runs: int | None = None
    training_runs: int | None = None
    dataset: str | None = None
    settings: RunSettings = field(default_factory=RunSettings)  # from a quoted command line


def read_report(path: str | Path) -> BenchmarkReport:
    """Read a report file (Markdown with a Raw Data JSON block, or the JSON alone)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory, not a report") from None
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not a text file, so not a benchmark report") from None
    except OSError as error:
        raise InputFileError(f"{path}: cannot read it ({error.strerror})") from None
    return parse_report_text(text, source=str(path))


def parse_report_text(text: str, source: str = "<text>") -> BenchmarkReport:
    stripped = text.strip()
    if stripped.startswith("{"):
        return report_from_raw_data(_load_json(stripped, source), source)
    block = _raw_data_block(text)
    if block is None:
        raise InputFileError(
            f"{source}: not a benchmark report (neither JSON nor Markdown with a "
            "```json Raw Data block)"
        )
    return report_from_raw_data(_load_json(block, source), source, _markdown_context(text))


def report_from_raw_data(
    data: Any, source: str = "<data>", context: _MarkdownContext | None = None
) -> BenchmarkReport:
    """A report from the Raw Data JSON, already parsed (also usable on a probe's own figures)."""
    if not isinstance(data, Mapping) or not _FIGURE_KEYS & data.keys():
        raise InputFileError(
            f"{source}: JSON holds none of a benchmark report's figures "
            "(compilation_successful, correctness, speedup_inference, ...)"
        )
    reader = _FieldReader(data)
    correctness_data = data.get("correctness")
    correctness_reader = _FieldReader(
        correctness_data if isinstance(correctness_data, Mapping) else {}, prefix="correctness."
    )
    if correctness_data is not None and not isinstance(correctness_data, Mapping):
        reader.malformed.append("correctness")
    context = context or _MarkdownContext()
    report = BenchmarkReport(
        source=source,
        success=reader.boolean("success"),
        policy=reader.text("policy"),
        device=reader.text("device"),
        pytorch_version=reader.text("pytorch_version"),
        compilation_successful=reader.boolean("compilation_successful"),
        compilation_error=reader.text("compilation_error", expected_null=True),
        correctness=Correctness(
            inference_correct=correctness_reader.boolean("inference_correct"),
            training_correct=correctness_reader.boolean("training_correct"),
            action_diff=correctness_reader.number("action_diff"),
            loss_diff=correctness_reader.number("loss_diff"),
        ),
        correctness_passed=reader.boolean("correctness_passed"),
        inference_benchmarked=reader.boolean("inference_benchmarked"),
        training_benchmarked=reader.boolean("training_benchmarked"),
        time_original_inference=reader.number("time_original_inference"),
        time_compiled_inference=reader.number("time_compiled_inference"),
        speedup_inference=reader.number("speedup_inference"),
        time_original_training=reader.number("time_original_training"),
        time_compiled_training=reader.number("time_compiled_training"),
        speedup_training=reader.number("speedup_training"),
        loss_consistency=reader.number("loss_consistency"),
        grad_norm_consistency=reader.number("grad_norm_consistency"),
        action_threshold=_positive(context.action_threshold, REFERENCE_TOLERANCE),
        loss_threshold=_positive(context.loss_threshold, REFERENCE_TOLERANCE),
        batch_size=context.batch_size,
        inference_runs=context.inference_runs,
        training_runs=context.training_runs,
        dataset=context.dataset,
        settings=_settings(data, context.settings, reader.malformed),
    )
    if not isinstance(correctness_data, Mapping):
        # Its four fields are missing with it; list the block once.
        correctness_reader.missing.clear()
        if correctness_data is None:
            reader.missing.append("correctness")
    report.missing = tuple(reader.missing + correctness_reader.missing)
    report.malformed = tuple(reader.malformed + correctness_reader.malformed)
    return report


def _settings(data: Mapping[str, Any], quoted: RunSettings, malformed: list[str]) -> RunSettings:
    """The Raw Data's settings keys, else what the quoted command line says."""
    reader = _FieldReader(data)  # its `missing` is dropped: these keys are optional
    disable_cudnn_tf32 = reader.boolean(DISABLE_CUDNN_TF32_KEY)
    precision = reader.text(MATMUL_PRECISION_KEY)
    if precision is not None and precision not in MATMUL_PRECISIONS:
        reader.malformed.append(MATMUL_PRECISION_KEY)
        precision = None
    malformed.extend(reader.malformed)
    stated = RunSettings(
        device_name=reader.text(DEVICE_NAME_KEY),
        dtype=reader.text(DTYPE_KEY),
        dropout_disabled=reader.boolean(DISABLE_DROPOUT_KEY),
        cudnn_allow_tf32=None if disable_cudnn_tf32 is None else not disable_cudnn_tf32,
        matmul_precision=precision,
    )
    return RunSettings(
        **{
            name: getattr(quoted, name) if getattr(stated, name) is None else getattr(stated, name)
            for name in (setting.name for setting in fields(RunSettings))
        }
    )


class _FieldReader:
    """Reads typed fields from a JSON object, noting which were missing or of the wrong type."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix
        self.missing: list[str] = []
        self.malformed: list[str] = []

    def _raw(self, key: str, expected_null: bool = False) -> Any:
        value = self.data.get(key)
        if value is None and not expected_null:
            self.missing.append(self.prefix + key)
        return value

    def number(self, key: str) -> float | None:
        value = finite_or_marker(self._raw(key))
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        self.malformed.append(self.prefix + key)
        return None

    def boolean(self, key: str) -> bool | None:
        value = self._raw(key)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.malformed.append(self.prefix + key)
        return None

    def text(self, key: str, expected_null: bool = False) -> str | None:
        value = self._raw(key, expected_null)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, Mapping | list) else str(value)


def _load_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, parse_constant=non_finite_constant)
    except json.JSONDecodeError as error:
        raise InputFileError(
            f"{source}: the report's JSON does not parse: {error.msg} "
            f"(line {error.lineno}, column {error.colno})"
        ) from None


def _raw_data_block(markdown: str) -> str | None:
    """The JSON block under the "Raw Data" heading, else the last ```json block."""
    blocks = [(m.start(), m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(markdown)]
    candidates = [(start, body) for start, lang, body in blocks if lang in ("json", "")]
    heading = _RAW_DATA_HEADING.search(markdown)
    if heading is not None:
        after = [body for start, body in candidates if start > heading.start()]
        if after:
            return after[0]
    json_blocks = [body for start, body in candidates if body.lstrip().startswith("{")]
    return json_blocks[-1] if json_blocks else None


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.IGNORECASE)
    return match.group(1) if match else None


def _markdown_context(markdown: str) -> _MarkdownContext:
    def integer(pattern: str) -> int | None:
        found = _search(pattern, markdown)
        return int(found) if found else None

    def number(pattern: str) -> float | None:
        found = _search(pattern, markdown)
        return float(found) if found else None

    return _MarkdownContext(
        action_threshold=number(rf"Max Action Difference\W*:?\W*\S+\s*\(threshold:\s*{_NUMBER}\)"),
        loss_threshold=number(rf"Loss Difference\W*:?\W*\S+\s*\(threshold:\s*{_NUMBER}\)"),
        batch_size=integer(r"Batch Size\W*:?\**\s*(\d+)"),
        inference_runs=integer(r"(\d+)\s+inference runs"),
        training_runs=integer(r"(\d+)\s+training runs"),
        dataset=_search(r"\*\*Dataset\*\*:\s*(\S+)", markdown),
        settings=_command_line_settings(markdown),
    )


def _command_line_settings(markdown: str) -> RunSettings:
    """The settings of the script's command line, where the Markdown quotes it: an option it
    lacks is the script's default (dropout as configured, cuDNN TF32 allowed, the matmul
    precision left as it was)."""
    match = _COMMAND_LINE.search(markdown)
    if match is None:
        return RunSettings()
    line = match.group(0)
    precision = _MATMUL_PRECISION_OPTION.search(line)
    return RunSettings(
        dropout_disabled="--disable-dropout" in line,
        cudnn_allow_tf32="--disable-cudnn-tf32" not in line,
        matmul_precision=precision.group(1) if precision else None,
    )


def _positive(value: float | None, default: float) -> float:
    return value if value is not None and math.isfinite(value) and value > 0 else default
