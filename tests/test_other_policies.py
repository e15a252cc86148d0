"""LeRobot's diffusion, vqbet and tdmpc: built offline from their configs, diagnosed on the CPU.

Each policy's `tiny` preset, random weights, synthetic batches shaped by the config's features
and delta indices. vqbet's diagnosis runs the graph-break probe and the benchmark with
backend="aot_eager" (no Inductor here); diffusion's and tdmpc's have files of their own.
"""

from __future__ import annotations

import pytest
import torch
from rich.console import Console
from tiny_policies import assert_benchmarked, quick_diagnosis, tiny

from analyzer.commands.list_policies import policy_table
from analyzer.diagnosis import Diagnosis
from probes.records.names import INFERENCE, TRAINING
from probes.targets.lerobot.batches import synthetic_batch
from probes.targets.target import Target

OTHER_POLICIES = ("diffusion", "vqbet", "tdmpc")


@pytest.fixture(scope="module", params=OTHER_POLICIES)
def target(request: pytest.FixtureRequest) -> Target:
    return tiny(request.param)


@pytest.fixture(scope="module")
def diagnosis() -> Diagnosis:
    """vqbet's: a policy whose select_action fills observation queues, explained and timed.

    diffusion's and tdmpc's diagnoses have files of their own (test_diffusion_diagnosis.py,
    test_tdmpc_diagnosis.py): all three in one file take longer than a test file should on a
    loaded 2-core machine.
    """
    return quick_diagnosis(tiny("vqbet"), {"benchmark", "graph_breaks"})


def training_batch(target: Target) -> dict[str, torch.Tensor]:
    return target.entry_functions(target.fresh_copy())[TRAINING][1][0]


def test_builds_offline_with_random_weights(target: Target) -> None:
    assert target.description["weights"].startswith("random")
    assert target.description["parameters"] > 0
    assert target.entry_points == [INFERENCE, TRAINING]


def test_training_batch_has_a_step_and_a_padding_mask_per_delta_index(target: Target) -> None:
    config = target.module.config
    training = training_batch(target)
    batch_size = target.description["batch_size"]
    delta = {key: config.observation_delta_indices for key in config.input_features}
    delta |= {key: config.action_delta_indices for key in config.output_features}
    if config.reward_delta_indices is not None:
        delta["next.reward"] = config.reward_delta_indices
    for key, indices in delta.items():
        assert training[key].shape[:2] == (batch_size, len(indices)), key
        mask = training[f"{key}_is_pad"]
        assert mask.shape == (batch_size, len(indices)) and mask.dtype == torch.bool, key
    assert training["index"].shape == (batch_size,)


def test_inference_batch_is_one_observation_per_feature(target: Target) -> None:
    config = target.module.config
    batch_size = target.description["batch_size"]
    observation = synthetic_batch(config, batch_size, target.device, training=False, seed=0)
    assert set(observation) == set(config.input_features)
    for key, feature in config.input_features.items():
        assert observation[key].shape == (batch_size, *feature.shape), key


def test_diagnosis_completes_with_the_benchmark_keys(diagnosis: Diagnosis) -> None:
    assert_benchmarked(diagnosis)


def test_compiled_code_runs_in_both_entry_points(diagnosis: Diagnosis) -> None:
    capture = diagnosis.probes["benchmark"]["capture"]
    assert capture[INFERENCE]["ran_compiled_code"] is True
    assert capture[TRAINING]["ran_compiled_code"] is True


# The benchmark calls each compiled entry point once more than its first call (under the
# profiler, counting compiled regions), and the eager side as often: a training forward of vqbet
# updates its VQ codebook, so one extra call on one side alone gave an action diff of 556.
def test_aot_eager_twin_matches_eager_exactly(diagnosis: Diagnosis) -> None:
    correctness = diagnosis.reference_metrics["correctness"]
    assert correctness["action_diff"] == 0.0
    assert correctness["loss_diff"] == 0.0


def test_a_queue_policy_is_explained_on_its_queued_observations(diagnosis: Diagnosis) -> None:
    section = diagnosis.probes["graph_breaks"]
    assert section[INFERENCE]["graph_count"] >= 1  # predict_action_chunk read its queues
    for entry_point in (INFERENCE, TRAINING):
        breaks = section[entry_point]["breaks"]
        assert section[entry_point]["break_count"] == sum(b["hits"] for b in breaks)
    assert any("populate_queues" in note for note in diagnosis.notes)


def test_list_says_what_each_policy_needs() -> None:
    console = Console(width=200, record=True)
    console.print(policy_table())
    lines = [line for line in console.export_text().splitlines() if line.startswith("│")]
    rows = {line.split("│")[1].strip(): line for line in lines}
    for name in ("act", *OTHER_POLICIES, "pi0", "pi05", "smolvla"):
        assert "nothing: random weights" in rows[name], rows[name]
