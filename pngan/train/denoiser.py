"""Supervised denoiser training: the frozen D_d of PNGAN (stage `denoiser_real`), the fixed PGap
denoiser, and fine-tuning on real + generated pairs (`fake_ratio`, see
`pngan.data.sampling.MixedPairDataset`).

Same machinery as the GAN loop (resume, atomic checkpoints, NaN guard, CSV logs, torchrun).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from pngan.errors import CheckpointError, DataError
from pngan.models import build as build_network
from pngan.models import final_output
from pngan.models.files import save_network_file, weights_from_file
from pngan.models.weights import load_weights
from pngan.runtime import autocast
from pngan.train import loop
from pngan.train.loop import NanGuard, Runtime, StepResult
from pngan.train.config import DenoiserConfig
from pngan.train.distributed import distributed, wrap

DENOISER_FILE = "denoiser.pt"


def restoration_loss(output: torch.Tensor | list[torch.Tensor], target: torch.Tensor, kind: str, eps: float = 1e-3) -> torch.Tensor:
    """Mean L1, Charbonnier sqrt((x - y)^2 + eps^2) or MSE; summed over the stages of a
    multi-stage network (MPRNet's own training sums them too)."""
    if isinstance(output, (list, tuple)):
        return sum(restoration_loss(o, target, kind, eps) for o in output)
    output, target = output.float(), target.float()
    if kind == "l1":
        return F.l1_loss(output, target)
    if kind == "charbonnier":
        return torch.sqrt((output - target).square() + eps * eps).mean()
    if kind == "mse":
        return F.mse_loss(output, target)
    raise ValueError(f"loss must be l1, charbonnier or mse, got '{kind}'")


def load_initial_weights(network: nn.Module, init: str | Path | nn.Module | dict) -> None:
    """Start from a PNGAN denoiser file, a training checkpoint, a released weights file (plain
    or wrapped state dict), a state dict, or another module of the same architecture."""
    if isinstance(init, nn.Module):
        state = init.state_dict()
    elif isinstance(init, dict):
        state = init
    else:
        state = weights_from_file(init, "denoiser")
    try:
        load_weights(network, state, name=f"{init if isinstance(init, (str, Path)) else type(init).__name__} (initial weights)")
    except DataError as err:  # names the file and lists a few mismatched keys, not all of them
        raise CheckpointError(str(err)) from None


class DenoiserTask:
    """Network, optimiser and one supervised step (noisy -> clean)."""

    loop = "denoiser"

    def __init__(self, cfg: DenoiserConfig, runtime: Runtime, val_set: Dataset | None, guard: NanGuard, init: Any = None):
        self.cfg, self.runtime, self.val_set, self.guard = cfg, runtime, val_set, guard
        self.network = build_network(cfg.arch, trusted=True, **cfg.arch_kwargs)
        init = init if init is not None else cfg.init
        if init is not None:
            load_initial_weights(self.network, init)
        self.network.to(runtime.device)
        self.channels_last = loop.use_channels_last(cfg.channels_last, runtime, self.network)
        # starting weights given as a module or state dict are not in the settings: hash them in
        start = [loop.weights_digest({"denoiser": self.network})] if init is not None else []
        self._identity = loop.combined_identity(cfg.identity_hash(), *start)
        self.opt = loop.adam(self.network.parameters(), cfg.lr, cfg.betas)
        self.sched = loop.cosine_schedule(self.opt, cfg, cfg.lr)
        model = wrap(self.network, runtime.ctx)
        self.model = torch.compile(model) if cfg.compile else model
        self.initialised_from = None if init is None else (str(init) if isinstance(init, (str, Path)) else type(init).__name__)

    def train_step(self, batch: dict[str, torch.Tensor], step: int, diagnose: bool) -> StepResult:
        with autocast(self.runtime.device, self.runtime.precision):
            out = self.model(batch["noisy"])
        loss = restoration_loss(out, batch["clean"], self.cfg.loss, self.cfg.charbonnier_eps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = loop.grad_norm(self.network.parameters())
        self.guard.step("loss", self.opt, loss.detach(), norm)
        self.sched.step()
        diagnostics = {"gradnorm": float(norm), "lr": self.opt.param_groups[0]["lr"]} if diagnose else {}
        return StepResult({"loss": loss.detach()}, diagnostics)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean PSNR of the denoised validation images (and of their noisy inputs)."""
        if self.val_set is None:
            return {}
        from pngan.metrics import psnr

        device = self.runtime.device
        self.network.eval()
        total_out = total_in = 0.0
        count = 0
        for _, batch in loop.same_shape_batches(self.val_set, self.cfg.batch):
            clean, noisy = batch["clean"].to(device), batch["noisy"].to(device)
            with autocast(device, self.runtime.precision):
                out = final_output(self.network(noisy)).float()
            total_out += float(psnr(out, clean).sum())
            total_in += float(psnr(noisy, clean).sum())
            count += clean.shape[0]
        self.network.train()
        return {"psnr": total_out / count, "psnr_input": total_in / count}

    def state_dict(self) -> dict[str, Any]:
        return {
            "models": {"denoiser": self.network.state_dict()},
            "optimizers": {"denoiser": self.opt.state_dict()},
            "schedulers": {"denoiser": self.sched.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["models"]["denoiser"])
        loop.load_optimizer(self.opt, state["optimizers"]["denoiser"])
        self.sched.load_state_dict(state["schedulers"]["denoiser"])

    def networks(self) -> dict[str, nn.Module]:
        return {"denoiser": self.network}

    def identity(self) -> str:
        return self._identity

    def describe(self) -> dict[str, Any]:
        return {"arch": self.cfg.arch, "initialised_from": self.initialised_from, "fake_ratio": self.cfg.fake_ratio}

    def export(self, out_dir: Path, summary: dict[str, Any]) -> Path:
        return save_network_file(
            Path(out_dir) / DENOISER_FILE, "denoiser", self.cfg.arch, self.cfg.arch_kwargs, self.network, summary=summary, config=self.cfg.to_dict()
        )


def train_denoiser(
    cfg: DenoiserConfig,
    train_dataset: Dataset,
    val_set: Dataset | None,
    out_dir: str | Path,
    init: str | Path | nn.Module | dict | None = None,
) -> dict[str, Any]:
    """Train a denoiser on (noisy -> clean) pairs (resuming from `out_dir/checkpoint.pt` when it
    matches `cfg`) and write `out_dir/denoiser.pt` and the CSV logs. Returns the run summary.

    `init` (or `cfg.init`) gives starting weights for fine-tuning. For real + generated mixes
    pass a `pngan.data.sampling.MixedPairDataset` as `train_dataset`.
    """
    with distributed(cfg.device) as ctx, loop.seeded(cfg):
        runtime = loop.make_runtime(cfg, ctx)
        guard = NanGuard(cfg.nan_patience, ctx)
        task = DenoiserTask(cfg, runtime, val_set, guard, init)
        return loop.run(task, cfg, runtime, train_dataset, out_dir, guard)
