"""--dtype: the model and its inputs in bfloat16 / float16, judged by the harness's criterion
for that precision; a compiled output closer to fp64 than eager's is no divergence.

The pointwise chain is the case low precision users meet: Inductor fuses it into one kernel that
computes in float32 and rounds to bfloat16 once, where eager rounds after every op, so compiled
comes out closer to the fp64 reference and differs from eager by more than an fp32 threshold.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from analyzer.api import diagnose_module
from analyzer.errors import UsageError
from analyzer.findings import Severity
from analyzer.rules.divergence import (
    TOLERANCE_TOO_STRICT,
    numerical_divergence,
    tolerance_too_strict,
)
from analyzer.rules.divergence_reading import complete_divergence_record
from probes.divergence.fp64_criterion import compare
from probes.divergence.probe import probe_divergence
from probes.errors import TargetError
from probes.records.divergence import (
    EVAL,
    HARNESS_TOLERANCE,
    LOW_PRECISION_TOLERANCE,
    criterion_for,
)
from probes.records.serialize import to_jsonable
from probes.targets.module import module_target
from probes.targets.target import CompileSettings


class PointwiseChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return ((h * 1.7).sin() * h.cos() + (h * 0.3).tanh() * 2.5 - h.sigmoid()).exp()


def chain_target(dtype: str):
    torch.manual_seed(0)
    return module_target(
        PointwiseChain(),
        (torch.randn(32, 64),),
        loss_fn=lambda y: y.float().mean(),
        dtype=dtype,
    )


@pytest.fixture(scope="module")
def bf16_chain():
    report = probe_divergence(chain_target("bfloat16"), CompileSettings(how="module"), what_ifs=())
    return complete_divergence_record(to_jsonable(report))


# --- the criterion ---------------------------------------------------------------------------


def test_low_precision_criterion_is_the_harness_one():
    assert criterion_for("float32").tolerance == HARNESS_TOLERANCE
    bf16 = criterion_for("bfloat16")
    assert bf16.tolerance == LOW_PRECISION_TOLERANCE and bf16.low_precision
    assert "1e-3" in bf16.source and criterion_for("float16").low_precision
    assert criterion_for("bfloat16", tolerance=5e-3).tolerance == 5e-3
    # same() gives every float16 / bfloat16 result the larger multiplier, whatever its size
    big = torch.zeros(5000)
    assert compare("x", big, big, big.double(), bf16).multiplier == bf16.multiplier_small
    assert compare("x", big, big, big.double(), criterion_for("float32")).multiplier == 2.0


def test_cosine_option_passes_on_direction_not_fp64():
    eager = torch.linspace(1, 2, 100)
    fp64 = eager.double()
    scaled = eager * 1.01  # 100x eager's error against fp64, same direction
    assert not compare("x", eager, scaled, fp64, criterion_for("float32")).passes
    cosine = criterion_for("float32", cosine=True)
    judged = compare("x", eager, scaled, fp64, cosine)
    assert judged.passes and judged.cosine_similarity == pytest.approx(1.0, abs=1e-6)
    assert "cosine_similarity(eager, compiled) >= 0.99" in cosine.rule()
    flipped = compare("x", eager, -eager, fp64, cosine)
    assert not flipped.passes and flipped.cosine_similarity == pytest.approx(-1.0)


# --- the target in that dtype ------------------------------------------------------------------


def test_module_and_floating_inputs_are_cast_and_the_callers_model_is_not():
    model = nn.Embedding(10, 4)
    head = nn.Sequential(model, nn.Flatten(), nn.Linear(8, 2))
    tokens = torch.tensor([[1, 2], [3, 4]])
    target = module_target(head, (tokens,), dtype="bfloat16")
    assert target.dtype == "bfloat16" and target.description["dtype"] == "bfloat16"
    assert all(p.dtype == torch.bfloat16 for p in target.module.parameters())
    assert all(p.dtype == torch.float32 for p in head.parameters())
    # an embedding indexes with integers only: the call works because the token ids stayed int64
    assert target.infer(target.fresh_copy()).isfinite().all()
    assert target.recipe is not None and target.recipe.kwargs["dtype"] == "bfloat16"


def test_unknown_dtype_is_one_line():
    with pytest.raises(TargetError, match="unknown dtype 'float8'; choose from float32"):
        module_target(nn.Linear(2, 2), (torch.randn(1, 2),), dtype="float8")
    with pytest.raises(UsageError, match="unknown dtype"):
        diagnose_module(nn.Linear(2, 2), (torch.randn(1, 2),), dtype="float8", probes=[])


# --- a compiled output closer to fp64 than eager's ---------------------------------------------


def test_fused_bf16_chain_is_closer_to_fp64_and_passes(bf16_chain):
    assert bf16_chain["dtype"] == "bfloat16"
    assert bf16_chain["criterion"]["tolerance"] == LOW_PRECISION_TOLERANCE
    evaluated = next(s for s in bf16_chain["scenarios"] if s["name"] == EVAL)
    action = evaluated["outputs"][0]
    assert evaluated["frames_compiled"] > 0 and evaluated["passes"]
    assert action["error_ratio"] < 1.0  # compiled nearer the exact result
    assert action["max_abs_diff"] > HARNESS_TOLERANCE  # yet it differs from eager beyond 1e-4
    assert numerical_divergence(bf16_chain) is None
    assert bf16_chain["bisection"] is None


def test_a_threshold_it_fails_is_called_too_strict_with_the_reason(bf16_chain):
    evaluated = next(s for s in bf16_chain["scenarios"] if s["name"] == EVAL)
    diff = evaluated["outputs"][0]["max_abs_diff"]
    benchmark = {"action_diff": diff, "settings": {"tolerance": 1e-4}}
    found = [f for f in tolerance_too_strict(bf16_chain, benchmark) if "action" in f.title]
    assert len(found) == 1 and found[0].code == TOLERANCE_TOO_STRICT.code
    assert found[0].severity == Severity.INFO
    assert "correct to bfloat16 rounding" in found[0].cause
    assert "Compiled is the closer of the two to the exact result" in found[0].cause
    assert found[0].evidence["dtype"] == "bfloat16"


def test_a_bf16_diagnosis_records_its_dtype_and_has_no_error():
    torch.manual_seed(0)
    diagnosis = diagnose_module(
        PointwiseChain(),
        (torch.randn(32, 64),),
        loss_fn=lambda y: y.float().mean(),
        backend="aot_eager",
        dtype="bfloat16",
        probes=["divergence"],
    )
    assert diagnosis.target["dtype"] == "bfloat16"
    assert diagnosis.probes["divergence"]["dtype"] == "bfloat16"
    assert not [f for f in diagnosis.findings if f.severity == Severity.ERROR]


def test_a_policy_that_cannot_run_in_bf16_is_refused_with_its_line():
    from probes.targets.lerobot.policy import PolicyRequest, build_target

    request = PolicyRequest(
        policy="act", device=torch.device("cpu"), preset="tiny", dtype="bfloat16"
    )
    with pytest.raises(TargetError) as raised:
        build_target(request)
    message = str(raised.value)
    assert message.startswith("act does not run in bfloat16 with its weights")
    assert "modeling_act.py:" in message and "\n" not in message  # ACT makes a float32 latent
