"""Which target each diagnosis diagnosed, and the settings the two runs recorded differently.

Two diagnoses compare when they diagnosed the same target: the same policy or module class, the
same preset, the same entry points. Anything else the runs recorded (versions, the machine,
compile options, numerics, policy config fields, inputs, iteration counts) is a setting: the
comparison lists those that differ first, since they explain much of any change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from analyzer.comparison.changes import SettingChange
from probes.records import target as target_keys
from probes.records.compile import entry_point_reports
from probes.records.names import BENCHMARK, GRAPH_BREAKS

# A policy's config fields, which `--policy.FIELD=VALUE` sets.
CONFIG = "config"
ENTRY_POINTS = "entry points"
PROBES_RUN = "probes run"

# Recorded settings that vary from run to run without changing what is measured: the cache
# folder, and what torchrun names each launch by (its run id, its error file's path).
_VOLATILE = frozenset(
    {"inductor_cache_dir", "env.TORCHELASTIC_RUN_ID", "env.TORCHELASTIC_ERROR_FILE"}
)


def target_name(diagnosis: Mapping[str, Any]) -> str:
    """What was diagnosed, in words: "act (preset cpu)" or "mymodel.Net"."""
    target = diagnosis.get("target") or {}
    name = (
        target.get(target_keys.POLICY) or target.get(target_keys.MODULE) or diagnosis.get("command")
    )
    preset = target.get(target_keys.PRESET)
    return f"{name} (preset {preset})" if preset else str(name)


def recorded_entry_points(diagnosis: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """The entry points each section that names them recorded: graph breaks, benchmark."""
    probes = diagnosis.get("probes") or {}
    found: dict[str, frozenset[str]] = {}
    if isinstance(probes.get(GRAPH_BREAKS), Mapping):
        found[GRAPH_BREAKS] = frozenset(entry_point_reports(probes[GRAPH_BREAKS]))
    timings = (probes.get(BENCHMARK) or {}).get("timings")
    if isinstance(timings, Mapping) and timings:
        found[BENCHMARK] = frozenset(timings)
    return found


def target_differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[SettingChange]:
    """What makes the two targets different ones: policy or module, preset, entry points."""
    differences = []
    for key in (target_keys.POLICY, target_keys.MODULE, target_keys.PRESET):
        one, other = (d.get("target", {}).get(key) for d in (before, after))
        if one != other:
            differences.append(SettingChange(key, one, other))
    one, other = recorded_entry_points(before), recorded_entry_points(after)
    for section in sorted(one.keys() & other.keys()):
        if one[section] != other[section]:
            differences.append(
                SettingChange(ENTRY_POINTS, sorted(one[section]), sorted(other[section]))
            )
            break
    return differences


def setting_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[SettingChange]:
    """Every recorded setting whose value differs, in the order a reader checks them."""
    one, other = dict(_settings(before)), dict(_settings(after))
    names = list(dict.fromkeys([*one, *other]))
    return [
        SettingChange(name, one.get(name), other.get(name))
        for name in names
        if one.get(name) != other.get(name) and name not in _VOLATILE
    ]


def _settings(diagnosis: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The settings of one run as (name, value), named as a user names them."""
    environment = dict(diagnosis.get("environment") or {})
    numerics = environment.pop("numerics", None) or {}
    extra = environment.pop("extra", None) or {}
    variables = environment.pop("torch_variables", None) or {}
    configs = environment.pop("compile_configs", None) or {}
    yield "torch", environment.pop("torch", None)
    yield "device", environment.pop("device", None)
    yield from _flat("compile", diagnosis.get("compile_settings") or {})
    yield from _flat("numerics", numerics)
    yield from _flat("config", configs)
    yield from _flat("env", variables)
    target = dict(diagnosis.get("target") or {})
    yield target_keys.PRESET, target.pop(target_keys.PRESET, None)
    yield from _flat("policy", target.pop(CONFIG, None) or {})
    for key, value in target.items():
        if key not in (target_keys.POLICY, target_keys.MODULE):
            yield f"target.{key}", value
    benchmark = (diagnosis.get("probes") or {}).get(BENCHMARK) or {}
    yield from _flat("benchmark", benchmark.get("settings") or {})
    yield PROBES_RUN, sorted((diagnosis.get("probes") or {}).keys())
    yield from environment.items()
    yield from _flat("environment", extra)
    yield "command", diagnosis.get("command")
    yield "compile-diagnose", (diagnosis.get("tool") or {}).get("version")


def _flat(prefix: str, section: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in section.items():
        yield f"{prefix}.{key}", value
