"""The policies this tool can build, and the presets (shapes and config values) of each.

A preset is data: what LeRobot's benchmark ran (`reference`), a CPU size for a diagnosis in
minutes (`cpu`), and a size for tests (`tiny`). Add a policy by adding its `PolicySpec` here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probes.errors import TargetError
from probes.records.names import GRAPH_BREAKS, RECOMPILES
from probes.records.target import DEFAULT_POLICY_COMPILE_HOW

if TYPE_CHECKING:  # the command line lists the policies without importing torch
    import torch


@dataclass(frozen=True)
class Preset:
    """A named set of shapes and config values a diagnosis runs with."""

    name: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    state_dim: int = 6
    action_dim: int = 6
    image_shape: tuple[int, int, int] | None = (3, 480, 640)
    camera: str = "observation.images.top"
    batch_size: int = 8
    iters_inference: int = 100
    iters_training: int = 50
    warmup: int = 10
    # The probes run unless the user names them (--probes), and why: None runs them all.
    probes: tuple[str, ...] | None = None
    why_these_probes: str = ""
    backend: str | None = None  # the backend unless the user names one (None: inductor)
    # A vision-language model the tool writes locally (`local_vlm`, by its name): its folder is
    # the config's `vlm_model_name`, so that nothing is fetched from the hub.
    local_vlm: str | None = None
    # pi0_fast's two tokenizers, written locally (`local_vlm.fast_tokenizer_folders`): their
    # folders are the config's `text_tokenizer_name` and `action_tokenizer_name`.
    local_tokenizers: bool = False


def cpu_preset(description: str, config: dict[str, Any], **fields: Any) -> Preset:
    """A `cpu` preset: a smaller policy so that a cold-cache diagnosis on a CPU takes minutes."""
    fields = {"iters_inference": 20, "iters_training": 10, "warmup": 3, **fields}
    return Preset(name="cpu", description=description, config=config, **fields)


def tiny_preset(description: str, config: dict[str, Any], **fields: Any) -> Preset:
    """A `tiny` preset, for tests and quick checks, not for figures: batch 2, a few calls."""
    fields = {"batch_size": 2, "iters_inference": 3, "iters_training": 2, "warmup": 1, **fields}
    return Preset(name="tiny", description=description, config=config, **fields)


def lerobot_extra(extra: str) -> str:
    """An extra of lerobot as pip takes it: `lerobot[diffusion]`."""
    return f"lerobot[{extra}]"


@dataclass(frozen=True)
class PolicySpec:
    name: str
    inner_module: str  # the attribute holding the network
    presets: dict[str, Preset]
    cuda_preset: str
    cpu_preset: str
    # What --compile-how model compiles, as attribute paths from the policy: a module is compiled
    # in place (`module.compile()`, its forward), a method is replaced by its compiled self. The
    # network's forward where the policy calls it; its methods where the policy calls those.
    compiled_parts: tuple[str, ...] = ()
    extra: str | None = None  # lerobot's extra for the packages below (pip install lerobot[extra])
    packages: tuple[str, ...] = ()  # import names the policy needs beyond lerobot's core
    default_compile_how: str = DEFAULT_POLICY_COMPILE_HOW
    # Built with initialisation skipped and filled once (`random_init`): billion-parameter models.
    fast_random_init: bool = False
    # The config's `dtype` field is the policy's own precision (pi0 keeps its vision tower and
    # norms in float32 under "bfloat16"): --dtype sets it instead of casting the whole module.
    config_dtype: bool = False

    @property
    def parts_compiled_by_model(self) -> tuple[str, ...]:
        return self.compiled_parts or (self.inner_module,)

    @property
    def install_extra(self) -> str:
        """lerobot's extra that installs `packages`, as pip takes it: `lerobot[diffusion]`."""
        return lerobot_extra(self.extra or self.name)

    def missing_packages(self) -> list[str]:
        return [name for name in self.packages if importlib.util.find_spec(name) is None]

    def what_it_needs(self) -> str:
        """What building this policy needs on this machine, in a line (`compile-diagnose list`)."""
        missing = self.missing_packages()
        if missing:
            return f"{', '.join(missing)} (pip install '{self.install_extra}')"
        return "nothing: random weights, synthetic batches"


ACT = PolicySpec(
    name="act",
    inner_module="model",
    presets={
        "reference": Preset(
            name="reference",
            description="as LeRobot's compile benchmark ran ACT for the reference report: "
            "use_vae=False, chunk_size=100, n_action_steps=10, dropout 0.1, resnet18, "
            "dim_model 512, batch 8, state/action dim 6, one 3x480x640 camera",
            config={"use_vae": False, "chunk_size": 100, "n_action_steps": 10, "dropout": 0.1},
        ),
        "cpu": cpu_preset(
            description="a smaller ACT for CPUs, so a cold-cache diagnosis finishes in minutes: "
            "the reference settings (use_vae=False, dropout 0.1, batch 8, resnet18 backbone) with "
            "a 3x64x64 camera, dim_model 128, 2 heads, dim_feedforward 256, 1 encoder and "
            "1 decoder layer, chunk_size 20, n_action_steps 10",
            config={
                "use_vae": False,
                "chunk_size": 20,
                "n_action_steps": 10,
                "dropout": 0.1,
                "dim_model": 128,
                "n_heads": 2,
                "dim_feedforward": 256,
                "n_encoder_layers": 1,
                "n_decoder_layers": 1,
            },
            image_shape=(3, 64, 64),
        ),
        "tiny": tiny_preset(
            description="the smallest ACT that still has every part (resnet18 backbone on a "
            "3x32x32 camera, dim_model 32, 1 encoder and 1 decoder layer, chunk_size 10), batch 2: "
            "for tests and quick checks, not for figures",
            config={
                "use_vae": False,
                "chunk_size": 10,
                "n_action_steps": 5,
                "dropout": 0.1,
                "dim_model": 32,
                "n_heads": 2,
                "dim_feedforward": 64,
                "n_encoder_layers": 1,
                "n_decoder_layers": 1,
            },
            image_shape=(3, 32, 32),
        ),
    },
    cuda_preset="reference",
    cpu_preset="cpu",
)

# Diffusion, VQ-BeT and TD-MPC as LeRobot's compile benchmark ran them (the three config values
# of each `reference` preset), on the image sizes of the datasets they were made for (PushT's
# 96x96, cropped to 84 by VQ-BeT; xArm's square 84x84 for TD-MPC, which takes square images only).

DIFFUSION = PolicySpec(
    name="diffusion",
    inner_module="diffusion",
    # DiffusionModel has no forward: the policy calls these two methods.
    compiled_parts=("diffusion.generate_actions", "diffusion.compute_loss"),
    extra="diffusion",
    packages=("diffusers",),
    presets={
        "reference": Preset(
            name="reference",
            description="as LeRobot's compile benchmark ran diffusion: n_obs_steps 2, horizon 16, "
            "n_action_steps 8, DiffusionConfig's defaults otherwise (resnet18, down_dims "
            "512/1024/2048, 100 denoising steps), batch 8, state/action dim 6, one 3x96x96 camera",
            config={"n_obs_steps": 2, "horizon": 16, "n_action_steps": 8},
            image_shape=(3, 96, 96),
        ),
        "cpu": cpu_preset(
            description="a smaller diffusion policy for CPUs: the reference n_obs_steps, horizon "
            "and n_action_steps with 5 denoising steps (100 take ~35 s a call on a 2-core CPU), "
            "down_dims 64/128/256, a 3x64x64 camera, batch 8",
            config={
                "n_obs_steps": 2,
                "horizon": 16,
                "n_action_steps": 8,
                "num_inference_steps": 5,
                "down_dims": (64, 128, 256),
                "diffusion_step_embed_dim": 64,
            },
            image_shape=(3, 64, 64),
            iters_inference=10,
            iters_training=10,
            warmup=2,
        ),
        "tiny": tiny_preset(
            description="the smallest diffusion policy that keeps every part (resnet18 on a "
            "3x64x64 camera, the smallest size whose feature map BatchNorm accepts, a two-level "
            "U-Net 16/32, 2 denoising steps, horizon 8), batch 2: for tests and quick checks",
            config={
                "n_obs_steps": 2,
                "horizon": 8,
                "n_action_steps": 4,
                "num_inference_steps": 2,
                "down_dims": (16, 32),
                "kernel_size": 3,
                "n_groups": 4,
                "diffusion_step_embed_dim": 16,
                "spatial_softmax_num_keypoints": 8,
            },
            image_shape=(3, 64, 64),
        ),
    },
    cuda_preset="reference",
    cpu_preset="cpu",
)

VQBET = PolicySpec(
    name="vqbet",
    inner_module="vqbet",
    # Inference calls VQBeTModel's forward; training, until the VQ-VAE is trained
    # (n_vqvae_training_steps), calls the action head's `discretize` instead.
    compiled_parts=("vqbet", "vqbet.action_head.discretize"),
    presets={
        "reference": Preset(
            name="reference",
            description="as LeRobot's compile benchmark ran vqbet: n_obs_steps 1, a chunk of 8 "
            "(lerobot 0.6.1 calls it action_chunk_size and has no n_action_steps), VQBeTConfig's "
            "defaults otherwise, batch 8, state/action dim 6, one 3x96x96 camera cropped to 84",
            config={"n_obs_steps": 1, "action_chunk_size": 8},
            image_shape=(3, 96, 96),
        ),
        "cpu": cpu_preset(
            description="a smaller VQ-BeT for CPUs: the reference chunk and crop, a 2-layer GPT of "
            "width 128, VQ-VAE width 64, batch 8",
            config={
                "n_obs_steps": 1,
                "action_chunk_size": 8,
                "gpt_n_layer": 2,
                "gpt_n_head": 2,
                "gpt_hidden_dim": 128,
                "gpt_input_dim": 128,
                "gpt_output_dim": 128,
                "vqvae_embedding_dim": 64,
                "vqvae_enc_hidden_dim": 64,
            },
            image_shape=(3, 96, 96),
        ),
        "tiny": tiny_preset(
            description="the smallest VQ-BeT that keeps every part (resnet18 on a 3x64x64 camera "
            "cropped to 56, a 1-layer GPT of width 32, VQ-VAE width 16, chunk 4), batch 2: for "
            "tests and quick checks",
            config={
                "n_obs_steps": 1,
                "action_chunk_size": 4,
                "crop_shape": (56, 56),
                "spatial_softmax_num_keypoints": 8,
                "gpt_n_layer": 1,
                "gpt_n_head": 2,
                "gpt_hidden_dim": 32,
                "gpt_input_dim": 32,
                "gpt_output_dim": 32,
                "gpt_block_size": 50,
                "vqvae_n_embed": 8,
                "vqvae_embedding_dim": 16,
                "vqvae_enc_hidden_dim": 16,
            },
            image_shape=(3, 64, 64),
        ),
    },
    cuda_preset="reference",
    cpu_preset="cpu",
)

# TD-MPC's planner encodes the image under "observation.image" while its encoder looks it up by
# the feature's own name: only a camera of that name works at inference.
TDMPC_CAMERA = "observation.image"

TDMPC = PolicySpec(
    name="tdmpc",
    inner_module="model",
    # TDMPCTOLD has no forward: the policy (its planner and its loss) calls these methods.
    compiled_parts=(
        "model.encode",
        "model.latent_dynamics_and_reward",
        "model.latent_dynamics",
        "model.pi",
        "model.V",
        "model.Qs",
    ),
    presets={
        "reference": Preset(
            name="reference",
            description="as LeRobot's compile benchmark ran tdmpc: horizon 5, n_action_steps 1, "
            "TDMPCConfig's defaults otherwise (CEM planning, 512 Gaussian samples), batch 8, "
            "state/action dim 6, one square 3x84x84 camera",
            config={"horizon": 5, "n_action_steps": 1},
            image_shape=(3, 84, 84),
            camera=TDMPC_CAMERA,
        ),
        "cpu": cpu_preset(
            description="a smaller TD-MPC for CPUs: the reference horizon and camera, MLPs of "
            "width 128, 128 Gaussian and 16 policy samples, 16 elites, 3 CEM iterations, batch 8",
            config={
                "horizon": 5,
                "n_action_steps": 1,
                "mlp_dim": 128,
                "state_encoder_hidden_dim": 64,
                "n_gaussian_samples": 128,
                "n_pi_samples": 16,
                "n_elites": 16,
                "cem_iterations": 3,
            },
            image_shape=(3, 84, 84),
            camera=TDMPC_CAMERA,
        ),
        "tiny": tiny_preset(
            description="the smallest TD-MPC that keeps every part (a 3x64x64 camera, the "
            "smallest its 4-conv encoder takes, latent 16, MLPs of width 32, 16 Gaussian and 4 "
            "policy samples, 1 CEM iteration, horizon 3), batch 2: for tests and quick checks",
            config={
                "horizon": 3,
                "n_action_steps": 1,
                "latent_dim": 16,
                "mlp_dim": 32,
                "image_encoder_hidden_dim": 8,
                "state_encoder_hidden_dim": 16,
                "n_gaussian_samples": 16,
                "n_pi_samples": 4,
                "n_elites": 4,
                "cem_iterations": 1,
            },
            image_shape=(3, 64, 64),
            camera=TDMPC_CAMERA,
        ),
    },
    cuda_preset="reference",
    cpu_preset="cpu",
)

# Vision-language-action policies. pi0 and pi05 cannot be made smaller than PaliGemma's
# gemma_300m with a gemma_300m action expert (1.83 and 1.95 billion parameters, 7.7 GB in float32):
# their CPU preset finds graph breaks and recompiles (backend eager) only, and the whole diagnosis
# runs on CUDA at full size in bfloat16. smolvla's vision-language model is written locally at any
# size (`local_vlm`), so it has tiny and CPU presets that run everything. All four compile
# `sample_actions` (pi0_fast: `sample_actions_fast`) and `forward` of their model when their
# config's `compile_model` is set, in the config's `compile_mode` (max-autotune): that switch is
# how they are compiled by default (--compile-how config).
PI_CAMERA = "observation.images.base_0_rgb"
VLA_PROBES = (GRAPH_BREAKS, RECOMPILES)
VLA_PROBES_WHY = (
    "a diagnosis of a {parameters}-parameter model on a CPU would take hours: graph breaks and "
    "recompiles (backend eager) only; the whole diagnosis runs on CUDA (--preset reference)"
)
SMALLEST_PALIGEMMA = {"paligemma_variant": "gemma_300m", "action_expert_variant": "gemma_300m"}


def pi_presets(
    name: str,
    parameters: str,
    config: dict[str, Any] | None = None,
    cpu_config: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Preset]:
    """pi0's, pi05's and pi0_fast's presets: full size in bfloat16 on CUDA; the smallest size
    on a CPU. `config` and `fields` are what the policy adds to both, `cpu_config` to the CPU's."""
    config = config or {}
    steps = "" if name == "pi0_fast" else "10 denoising steps, "
    return {
        "reference": Preset(
            name="reference",
            description=f"{name} as released: PaliGemma gemma_2b with a gemma_300m action expert, "
            "in bfloat16 (the config's own dtype: vision tower and norms stay float32), "
            f"{steps}chunk 50, one 3x224x224 camera, state 8, action 7, batch 8",
            config={"dtype": "bfloat16", **config},
            image_shape=(3, 224, 224),
            camera=PI_CAMERA,
            state_dim=8,
            action_dim=7,
            iters_inference=20,
            iters_training=10,
            warmup=3,
        ),
        "cpu": Preset(
            name="cpu",
            description=f"the smallest {name}: PaliGemma gemma_300m with a gemma_300m action "
            f"expert ({parameters} parameters, float32), {steps}chunk 50, one "
            "3x224x224 camera, state 8, action 7, batch 2; graph breaks and recompiles only",
            config={**SMALLEST_PALIGEMMA, **config, **(cpu_config or {})},
            image_shape=(3, 224, 224),
            camera=PI_CAMERA,
            state_dim=8,
            action_dim=7,
            batch_size=2,
            iters_inference=3,
            iters_training=2,
            warmup=1,
            probes=VLA_PROBES,
            why_these_probes=VLA_PROBES_WHY.format(parameters=parameters),
            backend="eager",
            **fields,
        ),
    }


def pi_spec(
    name: str,
    parameters: str,
    sample: str = "sample_actions",
    config: dict[str, Any] | None = None,
    cpu_config: dict[str, Any] | None = None,
    extra_parts: tuple[str, ...] = (),
    **fields: Any,
) -> PolicySpec:
    return PolicySpec(
        name=name,
        inner_module="model",
        compiled_parts=(f"model.{sample}", *extra_parts, "model.forward"),
        presets=pi_presets(name, parameters, config, cpu_config, **fields),
        cuda_preset="reference",
        cpu_preset="cpu",
        extra="pi",
        packages=("transformers",),
        default_compile_how="config",
        fast_random_init=True,
        config_dtype=True,
    )


PI0 = pi_spec("pi0", "1.83 billion")
PI05 = pi_spec("pi05", "1.95 billion")
# pi0_fast decodes action tokens one at a time (up to `max_decoding_steps`, 256): the CPU preset
# decodes 8. Its tokenizers are written locally; with random weights the decoded tokens never
# start with "Action: ", which lerobot asserts unless `validate_action_token_prefix` is off.
PI0_FAST = pi_spec(
    "pi0_fast",
    "1.25 billion",
    # predict_action_chunk decodes with sample_actions_fast_kv_cache (use_kv_cache, the default),
    # which the config's switch does not compile: --compile-how model compiles both
    sample="sample_actions_fast",
    extra_parts=("model.sample_actions_fast_kv_cache",),
    config={"validate_action_token_prefix": False},
    cpu_config={"max_decoding_steps": 8},
    local_tokenizers=True,
)

SMOLVLA_CAMERA = "observation.images.top"
SMOLVLA = PolicySpec(
    name="smolvla",
    inner_module="model",
    compiled_parts=("model.sample_actions", "model.forward"),
    presets={
        "reference": Preset(
            name="reference",
            description="smolvla as released: SmolVLM2-500M's config and processor (from the "
            "local Hugging Face cache: nothing is downloaded), random weights, 16 of its layers, "
            "one 3x512x512 camera, state 6, action 6, batch 8",
            config={},
            image_shape=(3, 512, 512),
            camera=SMOLVLA_CAMERA,
            iters_inference=20,
            iters_training=10,
            warmup=3,
        ),
        "cpu": cpu_preset(
            description="smolvla with a small SmolVLM the tool writes locally (text width 256, "
            "4 layers; vision width 128 on 128x128 images), 10 denoising steps, one 3x128x128 "
            "camera, batch 8",
            config={},
            image_shape=(3, 128, 128),
            camera=SMOLVLA_CAMERA,
            local_vlm="cpu",
        ),
        "tiny": tiny_preset(
            description="smolvla with a tiny SmolVLM the tool writes locally (text width 64, "
            "4 layers; vision width 32 on 64x64 images), 2 denoising steps, chunk 10, one "
            "3x64x64 camera, batch 2: for tests and quick checks",
            config={"num_steps": 2, "chunk_size": 10, "n_action_steps": 5},
            image_shape=(3, 64, 64),
            camera=SMOLVLA_CAMERA,
            local_vlm="tiny",
        ),
    },
    cuda_preset="reference",
    cpu_preset="cpu",
    extra="smolvla",
    packages=("transformers", "num2words"),
    default_compile_how="config",
)

POLICIES: dict[str, PolicySpec] = {
    spec.name: spec for spec in (ACT, DIFFUSION, VQBET, TDMPC, PI0, PI05, PI0_FAST, SMOLVLA)
}


def policy_spec(name: str) -> PolicySpec:
    if name not in POLICIES:
        known = ", ".join(sorted(POLICIES))
        raise TargetError(f"unknown policy {name!r}; known policies: {known}")
    return POLICIES[name]


def choose_preset(spec: PolicySpec, requested: str | None, device: torch.device) -> Preset:
    name = requested or (spec.cuda_preset if device.type == "cuda" else spec.cpu_preset)
    if name not in spec.presets:
        known = ", ".join(spec.presets)
        raise TargetError(f"{spec.name} has no preset {name!r}; presets: {known}")
    return spec.presets[name]
