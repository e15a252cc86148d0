"""The vision-language-action policies built offline from their configs, diagnosed on the CPU.

smolvla's tiny preset (a SmolVLM the tool writes locally) goes through the whole diagnosis with
backend="aot_eager", compiled by its own config switch (`compile_model`, the default for these
policies). pi0 at its smallest size (PaliGemma gemma_300m with a gemma_300m action expert: 1.83
billion parameters) goes through what its CPU preset runs: graph breaks and recompiles, with
backend eager. It is marked slow (two minutes and 15 GB on 2 cores: the suite would pass 15
minutes with it) and runs with `./scripts/test.sh -m slow`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.cli import main as cli_main
from probes.records.names import INFERENCE, TRAINING


def run_policy_cli(args: list[str], out: Path, cache: Path) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPILE_DIAGNOSE_CACHE", str(cache))  # the local VLM's folder goes here
        code = cli_main([*args, "--device", "cpu", "--out", str(out), "--json", str(out / "o")])
    assert code in (0, 1)  # healthy, or an error finding: both a complete diagnosis
    return json.loads((out / "diagnosis.json").read_text())


@pytest.fixture(scope="module")
def smolvla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    out = tmp_path_factory.mktemp("smolvla")
    cache = tmp_path_factory.mktemp("cache")
    # every probe; the levers on compile time (more compiles, a fresh process) are tested on ACT
    args = ["smolvla", "--preset", "tiny", "--backend", "aot_eager", "--compile-lever", "none"]
    yield run_policy_cli(args, out, cache)


def breaks_of(diagnosis: dict, entry_point: str) -> list[dict]:
    return diagnosis["probes"]["graph_breaks"][entry_point]["breaks"]


def test_smolvla_is_diagnosed_whole_from_a_local_vlm(smolvla: dict) -> None:
    assert smolvla["status"] == "complete"
    assert not smolvla.get("probe_errors"), smolvla.get("probe_errors")
    for probe in ("graph_breaks", "benchmark", "kernels", "speed", "divergence", "compile_time"):
        assert probe in smolvla["probes"], probe
    assert smolvla["probes"]["graph_breaks"]["recompiles"][INFERENCE]["scenarios"]
    target = smolvla["target"]
    assert target["policy"] == "smolvla" and target["parameters"] < 1_000_000
    assert "language: 16 random token ids padded to 48" in target["batch_source"]
    assert Path(target["config"]["vlm_model_name"]).is_dir()  # the folder the tool wrote


def test_smolvla_compiles_by_its_own_switch_in_its_configs_mode(smolvla: dict) -> None:
    settings = smolvla["compile_settings"]
    assert (settings["how"], settings["mode"], settings["backend"]) == (
        "config",
        "max-autotune",
        "aot_eager",
    )
    capture = smolvla["probes"]["benchmark"]["capture"]
    for entry_point, function in ((INFERENCE, "sample_actions"), (TRAINING, "forward")):
        assert capture[entry_point]["ran_compiled_code"] is True, entry_point
        functions = {frame["function"] for frame in capture[entry_point]["frames"]}
        assert function in functions, (entry_point, functions)


def test_smolvlms_dynamic_shape_break_is_located_in_transformers(smolvla: dict) -> None:
    for entry_point in (INFERENCE, TRAINING):
        found = [b for b in breaks_of(smolvla, entry_point) if b["gb_id"] == "GB0036"]
        assert found, entry_point
        location = found[0]["location"]
        assert location["filename"].endswith("transformers/models/smolvlm/modeling_smolvlm.py")
        assert "position_ids[" in location["code"]
        # the user's own frames that lead there: lerobot's smolvla
        stack_files = [frame["filename"] for frame in found[0]["user_stack"]]
        assert any(name.endswith("smolvla/modeling_smolvla.py") for name in stack_files)


@pytest.fixture(scope="module")
def pi0(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    out = tmp_path_factory.mktemp("pi0")
    cache = tmp_path_factory.mktemp("cache")
    # the CPU preset (graph breaks and recompiles, backend eager) in the config's bfloat16, one
    # denoising step: the same graphs as ten, a tenth of the tracing
    args = ["pi0", "--dtype", "bfloat16", "--policy.num_inference_steps=1"]
    yield run_policy_cli(args, out, cache)


@pytest.mark.slow
def test_pi0_builds_offline_at_its_smallest_size_with_its_projector_fitted(pi0: dict) -> None:
    target = pi0["target"]
    assert target["preset"] == "cpu" and target["dtype"] == "bfloat16"
    assert 1_800_000_000 < target["parameters"] < 1_900_000_000
    assert any("1152->1024" in note for note in pi0["notes"])
    assert pi0["probes"]["graph_breaks"]["recompiles"][INFERENCE]["scenarios"]
    assert "benchmark" not in pi0["probes"]  # the preset's choice, said in a note
    assert any("graph breaks and recompiles (backend eager) only" in n for n in pi0["notes"])


@pytest.mark.slow
def test_pi0_breaks_only_in_its_training_wrappers_loss_dict(pi0: dict) -> None:
    section = pi0["probes"]["graph_breaks"]
    assert section[INFERENCE]["break_count"] == 0 and section[INFERENCE]["graph_count"] == 1
    found = {(b["location"]["lineno"], b["gb_id"]) for b in breaks_of(pi0, TRAINING)}
    assert {line for line, _ in found} == {1120, 1131}, found  # .tolist() and .item()
    assert {gb for _, gb in found} == {"GB0109", "GB0124"}
    for found_break in breaks_of(pi0, TRAINING):
        assert found_break["location"]["filename"].endswith("lerobot/policies/pi0/modeling_pi0.py")


@pytest.mark.slow
def test_pi0_recompiles_once_for_a_new_batch_size(pi0: dict) -> None:
    report = pi0["probes"]["graph_breaks"]["recompiles"][INFERENCE]
    batch = next(s for s in report["scenarios"] if s["name"].startswith("batch size"))
    assert batch["recompiles"] and batch["guard_failures"], batch
    assert any("size mismatch at index 0" in guard for guard in batch["guard_failures"])
    assert not report["limit_hit"]
