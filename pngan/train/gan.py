"""PNGAN adversarial training (METHOD.md section 1): generator G, pixel discriminator D, and the
frozen real-noise denoiser D_d for image-domain alignment.

Per step t (0-based), on each process:
    y_s = NoiseModel.sample(x, generator seeded by (seed, t, rank))   synthetic input (Setting 1 or 2)
    y_f = G(y_s)
    D:  L_D(C(y_r), C(y_f.detach()))                                  d_steps updates
    G:  w_l1 |D_d(y_r) - D_d(y_f)|_1 + w_p |phi(D_d y_r) - phi(D_d y_f)|^2 + w_adv L_G
D_d never trains (eval, requires_grad False, in no optimizer); gradients reach G through it.
D scores real and fake in one forward pass (batch-norm statistics over both, one gradient
reduction under DDP); with d_steps > 1 its extra updates reuse the step's batch and y_f.
Adam with cosine decay to lr_min for both networks; bf16 autocast where precision says so.

`AdversarialTask` holds all of this; `PnganTask` is the paper's generator on it, and the
noise-aware generator (pngan.train.aware) is another, which conditions G and D on a level map.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from pngan.losses import DenoiserFeatures, alignment_l1, perceptual, relativistic_d_loss, relativistic_g_loss
from pngan.models import build as build_network
from pngan.models.files import save_network_file
from pngan.noise.base import quantize
from pngan.noise.synthetic import build_input_noise, input_spec
from pngan.runtime import autocast, keyed_generator
from pngan.train import loop
from pngan.train.loop import STREAM_INPUT_NOISE, STREAM_VALIDATION, NanGuard, Runtime, StepResult
from pngan.train.config import GanConfig
from pngan.train.distributed import distributed, wrap

STREAM_FIXED_INPUT = 4
GENERATOR_FILE = "generator.pt"
INERT_RATIO = 1e-3  # a perceptual term pulling G less than this fraction of L1 is reported


def freeze(network: nn.Module) -> nn.Module:
    """Eval mode, no gradients for its parameters (they still flow to its input)."""
    network.eval()
    network.requires_grad_(False)
    return network


@contextlib.contextmanager
def frozen_parameters(network: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients to `network`'s parameters (the discriminator during G's step)."""
    flags = [p.requires_grad for p in network.parameters()]
    network.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(network.parameters(), flags):
            p.requires_grad_(flag)


class Alignment:
    """D_d(y) and, for the perceptual term, phi(D_d(y)): VGG19 on the denoised image, or D_d's
    own deep features captured in the same forward pass, or none."""

    def __init__(self, cfg: GanConfig, denoiser: nn.Module, vgg: nn.Module | None, device: torch.device):
        self.denoiser = denoiser
        self.vgg: nn.Module | None = None
        self.hooked: DenoiserFeatures | None = None
        kind = cfg.perceptual
        if kind == "auto":
            kind = "vgg19" if (vgg is not None or cfg.vgg_weights) else "denoiser"
        if kind == "vgg19":
            if vgg is None:
                from pngan.models.vgg import VGG19Features

                layer = "conv5_4" if cfg.perceptual_layer == "auto" else cfg.perceptual_layer
                vgg = VGG19Features.from_file(cfg.vgg_weights, layer)
            self.vgg = freeze(vgg.to(device))
            self.used = f"vgg19:{getattr(vgg, 'layer', cfg.perceptual_layer)}"
        elif kind == "denoiser":
            self.hooked = DenoiserFeatures(denoiser, cfg.perceptual_layer)
            self.used = f"denoiser:{self.hooked.layer}"
        else:
            self.used = "none"

    @property
    def has_features(self) -> bool:
        return self.used != "none"

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.hooked is not None:
            return self.hooked(image)
        out = self.denoiser(image)
        return out, (self.vgg(out) if self.vgg is not None else None)


class AdversarialTask:
    """What PNGAN's generators share: the pixel discriminator, the frozen D_d and its alignment,
    the three losses, the optimisers, one training step, validation, state and export.

    A subclass says how a fake is made (`fake`, `validation_draw`), what D sees beside each image
    (the condition `fake` returns: None for the paper's generator) and what the generator file
    records about its input (`file_entries`).
    """

    loop = "pngan"

    def __init__(
        self,
        cfg: GanConfig,
        runtime: Runtime,
        denoiser: nn.Module,
        val_set: Dataset | None,
        guard: NanGuard,
        vgg: nn.Module | None,
        generator_kwargs: dict[str, Any],
        discriminator_kwargs: dict[str, Any],
        identity_parts: tuple[str, ...] = (),
    ):
        self.cfg, self.runtime, self.val_set, self.guard = cfg, runtime, val_set, guard
        device = runtime.device
        self.generator_kwargs = generator_kwargs
        self.generator = build_network(cfg.generator, trusted=True, **generator_kwargs).to(device)
        self.discriminator = build_network(cfg.discriminator, trusted=True, **discriminator_kwargs).to(device)
        self.denoiser = freeze(denoiser.to(device))
        # the frozen D_d shapes what G learns: a run never resumes with other D_d weights
        self._identity = loop.combined_identity(cfg.identity_hash(), loop.weights_digest({"denoiser": self.denoiser}), *identity_parts)
        self.align = Alignment(cfg, self.denoiser, vgg, device)
        self.channels_last = loop.use_channels_last(cfg.channels_last, runtime, self.generator, self.discriminator, self.denoiser, self.align.vgg)
        self._inert_reported = False
        self.opt_g = loop.adam(self.generator_parameters(), cfg.lr_g, cfg.betas)
        self.opt_d = loop.adam(self.discriminator.parameters(), cfg.lr_d, cfg.betas)
        self.sched_g = loop.cosine_schedule(self.opt_g, cfg, cfg.lr_g)
        self.sched_d = loop.cosine_schedule(self.opt_d, cfg, cfg.lr_d)
        # DDP replicas for the updates; D's plain module for G's step (D is frozen there, and a
        # DDP forward without a matching gradient reduction would stall the next one)
        self.G = _maybe_compile(wrap(self.generator, runtime.ctx), cfg.compile)
        self.D = _maybe_compile(wrap(self.discriminator, runtime.ctx), cfg.compile)
        self.D_frozen = _maybe_compile(self.discriminator, cfg.compile)

    # ---- what a subclass supplies ------------------------------------------------------------
    def fake(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(y_s, y_f, condition) of a training batch: the input-side draw (for the diagnostics),
        G's fake in float32 with its graph, and the channels D sees beside each image (or None)."""
        raise NotImplementedError

    def validation_draw(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_s, fake rounded to 8 bit) of a validation batch, drawn with `generator`."""
        raise NotImplementedError

    def file_entries(self) -> dict[str, Any]:
        """What the generator file records about G's input."""
        raise NotImplementedError

    def generator_parameters(self) -> Any:
        """G's parameters for its optimiser (parameter groups when some take another rate)."""
        return self.generator.parameters()

    def extra_terms(self) -> dict[str, torch.Tensor]:
        """Weighted generator terms beyond PNGAN's three, from the last `fake` (they do not act
        through the fake image: the diagnostics leave them out)."""
        return {}

    # ---- one step -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int, diagnose: bool) -> StepResult:
        cfg, device, precision = self.cfg, self.runtime.device, self.runtime.precision
        clean, real = batch["clean"], batch["noisy"]
        y_s, y_f, condition = self.fake(batch, step)

        for _ in range(cfg.d_steps):
            with autocast(device, precision):
                c_real, c_fake = self.D(_judged(real, y_f.detach(), condition)).chunk(2)
            loss_d = relativistic_d_loss(c_real, c_fake, cfg.ra_mean)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.guard.step("L_D", self.opt_d, loss_d.detach(), loop.grad_norm(self.discriminator.parameters()))

        with frozen_parameters(self.discriminator), autocast(device, precision):
            c_real, c_fake = self.D_frozen(_judged(real, y_f, condition)).chunk(2)
            with torch.no_grad():
                dd_real, feat_real = self.align(real)
            dd_fake, feat_fake = self.align(y_f)
            l1 = alignment_l1(dd_real, dd_fake)
            lp = perceptual(feat_real, feat_fake, cfg.perceptual_norm) if self.align.has_features else torch.zeros((), device=device)
            lg = relativistic_g_loss(c_real.detach(), c_fake, cfg.ra_mean)
        terms = {"l1": cfg.w_l1 * l1, "perceptual": cfg.w_perceptual * lp, "adv": cfg.w_adv * lg}
        extra = self.extra_terms()
        total = terms["l1"] + terms["perceptual"] + terms["adv"] + sum(extra.values())
        diagnostics = self._diagnostics(terms, y_s, y_f, clean, real, c_real, c_fake) if diagnose else {}
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        gn_g = loop.grad_norm(self.generator.parameters())
        self.guard.step("L_G", self.opt_g, total.detach(), gn_g)
        self.sched_g.step()
        self.sched_d.step()
        named = {"L_D": loss_d, "L1": l1, "Lp": lp, "L_G": lg, **{f"L_{k}": v for k, v in extra.items()}, "total": total}
        losses = {k: v.detach() for k, v in named.items()}
        if diagnose:
            diagnostics["gradnorm_G_params"] = float(gn_g)
        return StepResult(losses, diagnostics)

    def _diagnostics(self, terms, y_s, y_f, clean, real, c_real, c_fake) -> dict[str, float]:
        """METHOD.md section 6: noise levels, the discriminator's margin, and each weighted term's
        gradient norm on the generator's output (which term actually drives G)."""
        out: dict[str, float] = {f"w_{k}": float(v.detach()) for k, v in terms.items()}
        for name, term in terms.items():
            if term.requires_grad:
                (grad,) = torch.autograd.grad(term, y_f, retain_graph=True, allow_unused=True)
                out[f"gradnorm_{name}"] = 0.0 if grad is None else float(grad.norm())
        with torch.no_grad():
            out["std_input_255"] = float((y_s - clean).std() * 255)
            out["std_fake_255"] = float((y_f - clean).std() * 255)
            out["std_real_255"] = float((real - clean).std() * 255)
            out["d_logit_gap"] = float(c_real.float().mean() - c_fake.float().mean())
            out["d_real_wins"] = float((c_real > c_fake).float().mean())
        out["lr_g"] = self.opt_g.param_groups[0]["lr"]
        out["lr_d"] = self.opt_d.param_groups[0]["lr"]
        self._warn_if_inert(out)
        return out

    def _warn_if_inert(self, diagnostics: dict[str, float]) -> None:
        """Say so (once) when the weighted perceptual term pulls G less than INERT_RATIO of L1: it
        is then a no-op in practice (METHOD.md section 6: raw denoiser features made it ~700x
        smaller). The adversarial balance is in the log (gradnorm_adv) but not warned about: it
        starts tiny while D is untrained."""
        pull, l1 = diagnostics.get("gradnorm_perceptual"), diagnostics.get("gradnorm_l1", 0.0)
        if self.cfg.w_perceptual > 0 and pull is not None and pull < INERT_RATIO * l1 and not self._inert_reported:
            self._inert_reported = True
            if self.runtime.ctx.is_main:
                print(f"warning: the weighted perceptual term's gradient on G is {pull / l1:.1e} of L1's: it is nearly inert", flush=True)

    # ---- validation -----------------------------------------------------------------------
    group_names: tuple[str, ...] = ()  # names of the validation items' 'group' indices, if they carry one

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """AKLD / KLD of G's fake noise against the real noise on the validation crops (fixed
        seeds, fakes rounded to 8 bit), the input draw's AKLD, and the noise levels; for items
        that carry a 'group', also the fake and real noise std per group (`std_fake_255@<group>`)."""
        if self.val_set is None:
            return {}
        from pngan.metrics import akld, kld_histogram

        device = self.runtime.device
        self.generator.eval()
        sums: dict[str, float] = {}
        count = 0
        per_group: dict[str, list[float]] = {}
        for first, batch in loop.same_shape_batches(self.val_set, self.cfg.batch):
            batch = {k: v.to(device) for k, v in batch.items()}
            clean, real = batch["clean"], batch["noisy"]
            draws, y_s = [], None
            for draw in range(self.cfg.val_samples):
                y_s, fake = self.validation_draw(batch, keyed_generator(self.cfg.seed, STREAM_VALIDATION, first, draw, device=device))
                draws.append(fake)
            fake = torch.stack(draws)
            values = {
                "akld": akld(clean, real, fake),
                "kld": kld_histogram(clean, real, fake),
                "akld_input": akld(clean, real, y_s),
                "std_fake_255": (fake[0] - clean).std(dim=(1, 2, 3)) * 255,
                "std_real_255": (real - clean).std(dim=(1, 2, 3)) * 255,
            }
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + float(v.double().sum())
            count += clean.shape[0]
            for i, group in enumerate(batch["group"].tolist() if "group" in batch else []):
                for k in ("std_fake_255", "std_real_255"):
                    per_group.setdefault(f"{k}@{self.group_names[group]}", []).append(float(values[k][i]))
        self.generator.train()
        return {**{k: v / count for k, v in sums.items()}, **{k: sum(v) / len(v) for k, v in sorted(per_group.items())}}

    # ---- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "models": {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()},
            "optimizers": {"generator": self.opt_g.state_dict(), "discriminator": self.opt_d.state_dict()},
            "schedulers": {"generator": self.sched_g.state_dict(), "discriminator": self.sched_d.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["models"]["generator"])
        self.discriminator.load_state_dict(state["models"]["discriminator"])
        loop.load_optimizer(self.opt_g, state["optimizers"]["generator"])
        loop.load_optimizer(self.opt_d, state["optimizers"]["discriminator"])
        self.sched_g.load_state_dict(state["schedulers"]["generator"])
        self.sched_d.load_state_dict(state["schedulers"]["discriminator"])

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def identity(self) -> str:
        return self._identity

    def describe(self) -> dict[str, Any]:
        return {"perceptual": self.align.used}

    def export(self, out_dir: Path, summary: dict[str, Any]) -> Path:
        return save_network_file(
            Path(out_dir) / GENERATOR_FILE,
            "generator",
            self.cfg.generator,
            self.generator_kwargs,
            self.generator,
            **self.file_entries(),
            summary=summary,
            config=self.cfg.to_dict(),
        )


def _judged(real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
    """D's input: real and fake in one batch (batch-norm statistics over both), each with the
    condition channels beside it when there is one."""
    images = torch.cat([real, fake])
    return images if condition is None else torch.cat([images, torch.cat([condition, condition])], dim=1)


class PnganTask(AdversarialTask):
    """The paper's PNGAN: G maps a synthetic noisy input y_s to y_f (used by `train_pngan` and the benchmark)."""

    loop = "pngan"

    def __init__(self, cfg: GanConfig, runtime: Runtime, denoiser: nn.Module, val_set: Dataset | None, guard: NanGuard, vgg: nn.Module | None = None):
        super().__init__(cfg, runtime, denoiser, val_set, guard, vgg, cfg.generator_kwargs, cfg.discriminator_kwargs)
        self.input_noise = build_input_noise(input_spec(cfg.to_dict()), trusted=True)

    def synthetic_input(self, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        if "synthetic" in batch:
            return batch["synthetic"]
        clean = batch["clean"]
        g = keyed_generator(self.cfg.seed, STREAM_INPUT_NOISE, step, self.runtime.ctx.rank, device=clean.device)
        return self.input_noise.sample(clean, g)

    def fake(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, torch.Tensor, None]:
        y_s = self.synthetic_input(batch, step)
        with autocast(self.runtime.device, self.runtime.precision):
            y_f = self.G(y_s).float()
        return y_s, y_f, None

    def validation_draw(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        y_s = self.input_noise.sample(batch["clean"], generator)
        with autocast(self.runtime.device, self.runtime.precision):
            return y_s, quantize(self.generator(y_s).float())

    def file_entries(self) -> dict[str, Any]:
        return {"input": input_spec(self.cfg.to_dict())}


def _maybe_compile(module: nn.Module, enabled: bool) -> nn.Module:
    return torch.compile(module) if enabled else module


def with_fixed_input(dataset: Dataset, cfg: GanConfig) -> Dataset:
    """The training set with one pre-drawn synthetic input per image (the authors' fixed mode;
    `PairDataset.with_synthetic` then holds the set in memory)."""
    if not hasattr(dataset, "with_synthetic"):
        raise ValueError(f"input_noise_fixed needs a dataset with a `with_synthetic` method; {type(dataset).__name__} has none")
    noise = build_input_noise(input_spec(cfg.to_dict()), trusted=True)

    def draw(clean: torch.Tensor, index: int) -> torch.Tensor:
        return noise.sample(clean, keyed_generator(cfg.seed, STREAM_FIXED_INPUT, index))

    return dataset.with_synthetic(draw)


def train_pngan(
    cfg: GanConfig,
    train_dataset: Dataset,
    val_set: Dataset | None,
    denoiser: nn.Module,
    out_dir: str | Path,
    vgg: nn.Module | None = None,
) -> dict[str, Any]:
    """Train PNGAN (resuming from `out_dir/checkpoint.pt` when it matches `cfg`) and write
    `out_dir/generator.pt`, `train_log.csv`, `val_log.csv`. Returns the run summary.

    `train_dataset` / `val_set` follow the key protocol of `pngan.data.sampling` (a
    `pngan.data.patches.PairDataset`); `denoiser` is the pre-trained D_d (frozen here); `vgg` an
    optional feature network for the perceptual term.
    Under torchrun each process trains a replica on its own batches (batch = per process).
    """
    if cfg.input_noise_fixed:
        train_dataset = with_fixed_input(train_dataset, cfg)
    return run_adversarial(cfg, lambda runtime, guard: PnganTask(cfg, runtime, denoiser, val_set, guard, vgg), train_dataset, out_dir)


def run_adversarial(cfg: GanConfig, make_task: Callable[[Runtime, NanGuard], AdversarialTask], train_dataset: Dataset,
                    out_dir: str | Path) -> dict[str, Any]:
    """One adversarial training run of either generator: the task made and trained under the
    run's seed, device and (under torchrun) process group."""
    with distributed(cfg.device) as ctx, loop.seeded(cfg):
        runtime = loop.make_runtime(cfg, ctx)
        guard = NanGuard(cfg.nan_patience, ctx)
        return loop.run(make_task(runtime, guard), cfg, runtime, train_dataset, out_dir, guard)
