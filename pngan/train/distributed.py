"""Data-parallel training under torchrun (one process per device).

`torchrun --nproc_per_node N -m pngan train-pngan ...` sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous variables; multi-node runs use torchrun's own --nnodes / --rdzv-* flags, nothing here
changes. Without those variables everything runs as a single process.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from pngan.runtime import select_device


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _device_for_rank(preference: str, local_rank: int) -> torch.device:
    device = select_device(preference)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[DistContext]:
    """Join the torchrun process group (if launched by torchrun and not joined yet), yield the
    context, and leave the group on exit if this call joined it.

    Backend: nccl on CUDA, gloo otherwise; each process uses the GPU of its LOCAL_RANK.
    """
    if not launched_by_torchrun():
        yield DistContext(device=select_device(device))
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device_for_rank(device, local_rank)
    joined = False
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        joined = True
    try:
        yield DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev)
        if joined:
            dist.barrier()  # leave together; after an error, exit at once and let torchrun stop the rest
    finally:
        if joined:
            dist.destroy_process_group()


def wrap(module: nn.Module, ctx: DistContext) -> nn.Module:
    """DistributedDataParallel around a trained network (its weights are broadcast from rank 0
    on construction, so every replica starts identical); the module itself when not distributed."""
    if not ctx.enabled:
        return module
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, output_device=ids[0] if ids else None)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def nonfinite_flag(ctx: DistContext, *values: torch.Tensor) -> torch.Tensor:
    """0-dim float32 tensor on the device: 1 when some value is not finite on some process, else 0.
    No host sync: the flag feeds fused Adam's `found_inf`, and every process agrees on it, or
    replicas would diverge and their collectives deadlock."""
    bad = torch.stack([~torch.isfinite(v.detach().to(ctx.device)).all() for v in values]).any()
    flag = bad.float().reshape(1)
    if ctx.enabled:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag.reshape(())


def mean_over_processes(ctx: DistContext, values: dict[str, float]) -> dict[str, float]:
    """Average scalar diagnostics over all processes (for logging)."""
    if not ctx.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return dict(zip(keys, (t / ctx.world_size).tolist()))
