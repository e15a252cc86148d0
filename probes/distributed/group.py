"""The process group of a distributed diagnosis: gloo on a CPU, NCCL on CUDA."""

from __future__ import annotations

import datetime

import torch
import torch.distributed as dist

from probes.records.distributed import GLOO, NCCL


def process_group_backend(device: torch.device) -> str:
    return NCCL if device.type == "cuda" else GLOO


def rank_device(requested: torch.device, local_rank: int) -> torch.device:
    """The device this rank measures on: its own GPU (by local rank) on CUDA."""
    if requested.type != "cuda":
        return requested
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def init_group(device: torch.device, timeout_s: float) -> str:
    """Join the launch's process group (from torchrun's environment); its backend's name.

    `timeout_s` bounds a collective that waits for a rank that will never come.
    """
    backend = process_group_backend(device)
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=timeout_s)
        if device.type == "cuda":
            dist.init_process_group(backend, timeout=timeout, device_id=device)
        else:
            dist.init_process_group(backend, timeout=timeout)
    return backend


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
