"""The loop machinery both trainers share: setup, resume, data order, NaN guard, CSV logs,
validation and checkpoint cadence, progress bar.

A trainer supplies a `Task` (its networks, optimisers and one training step); `run` drives it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import pandas as pd
import torch
import torch.distributed
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from pngan.data.sampling import StepSampler, make_loader
from pngan.errors import CheckpointError, TrainingDiverged
from pngan.runtime import atomic_write_text, code_digest, resolve_precision, run_info, seed_everything, split_machine_facts, stable_seed
from pngan.train.checkpoint import CheckpointStore, restore_rng_state
from pngan.train.config import DenoiserConfig, GanConfig
from pngan.train.distributed import DistContext, barrier, mean_over_processes, nonfinite_flag

# streams of the keyed generators, so no two purposes share random numbers
STREAM_SAMPLER, STREAM_INPUT_NOISE, STREAM_VALIDATION = 1, 2, 3

TRAIN_LOG, VAL_LOG = "train_log.csv", "val_log.csv"
# wall-clock facts of a run, kept out of the checkpoint and logs so those are byte-identical on
# any machine (DVC hashes them); `.dvcignore` keeps DVC from hashing this file
RUN_INFO = "run_info.json"


def read_logs(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training log, validation log) of a run folder, as data frames (an absent log is empty;
    columns never filled are dropped), e.g. for `pngan.plots.gan_curves`."""
    run_dir = Path(run_dir)
    frames = []
    for name in (TRAIN_LOG, VAL_LOG):
        path = run_dir / name
        frame = pd.read_csv(path) if path.is_file() else pd.DataFrame({"step": []})
        frames.append(frame.dropna(axis=1, how="all"))
    if frames[0].empty and frames[1].empty:
        raise FileNotFoundError(f"{run_dir}: no {TRAIN_LOG} or {VAL_LOG} (has the run started?)")
    return frames[0], frames[1]


class NanGuard:
    """Skips optimizer updates whose loss or gradient is not finite (on any process) and stops
    training after `patience` skipped steps in a row.

    The check never stalls the loop on the device: `step` hands its verdict to fused Adam as
    `found_inf` (the update, moments and step count are left untouched on the device), and the
    verdicts are read back with the losses at the loop's sync points (`PendingSteps.settle`)."""

    def __init__(self, patience: int, ctx: DistContext):
        self.patience, self.ctx = patience, ctx
        self.in_a_row = 0
        self.total_skipped = 0
        self.flags: dict[str, torch.Tensor] = {}  # the current step's verdicts: update -> 1 if skipped

    def begin_step(self) -> None:
        self.flags = {}

    def step(self, what: str, optimizer: torch.optim.Optimizer, *values: torch.Tensor) -> None:
        """`optimizer.step()`, skipped on the device when a value (a loss, a gradient norm) is not finite."""
        found = nonfinite_flag(self.ctx, *values)
        optimizer.found_inf = found
        optimizer.step()
        self.flags[what] = torch.maximum(self.flags[what], found) if what in self.flags else found

    def record(self, step: int, skipped: list[str], losses: dict[str, float]) -> None:
        """Account for one settled step; too many skipped in a row raise TrainingDiverged."""
        if not skipped:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        self.total_skipped += 1
        if self.in_a_row >= self.patience:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
            raise TrainingDiverged(
                f"{self.in_a_row} consecutive steps with non-finite losses or gradients (steps {step - self.in_a_row + 1}-{step}; "
                f"last: {shown}); training stopped. Lower the learning rates, try precision: fp32, or resume from the last checkpoint."
            )

    def state_dict(self) -> dict[str, int]:
        return {"in_a_row": self.in_a_row, "total_skipped": self.total_skipped}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.in_a_row, self.total_skipped = state["in_a_row"], state["total_skipped"]


def adam(parameters, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Fused Adam: one kernel per step, and the only kind that honours `found_inf` (NanGuard)."""
    return torch.optim.Adam(parameters, lr=lr, betas=tuple(betas), fused=True)


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load an Adam state saved by this or an earlier (unfused) kit: the flags stay fused and the
    step counts move to the parameters' device, where fused Adam keeps them."""
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        group.update(fused=True, foreach=None)
        for p in group["params"]:
            slot = optimizer.state.get(p, {})
            if "step" in slot:
                slot["step"] = torch.as_tensor(slot["step"]).to(p.device, torch.float32, copy=True)


class CsvLog:
    """A CSV file of rows keyed by `step`, appended as training goes. On open, rows after
    `keep_until` are dropped (a resumed run rewrites what it redoes); new columns rewrite the header."""

    def __init__(self, path: Path, keep_until: int, enabled: bool = True):
        self.path, self.enabled = path, enabled
        self.fields: list[str] = []
        self.rows: list[dict[str, str]] = []
        self.last_row: dict[str, Any] = {}
        if enabled and path.exists():
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or [])
                self.rows = [r for r in reader if int(float(r["step"])) <= keep_until]
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)

    def append(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.last_row = dict(row)
        row = {k: _fmt(v) for k, v in row.items()}
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new or not self.path.exists():
            self.fields += new
            self._rewrite()
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields, restval="").writerow(row)

    def last(self) -> dict[str, float]:
        """The last row's values without `step` (unrounded when appended in this run)."""
        row = self.last_row or (self.rows[-1] if self.rows else {})
        return {k: float(v) for k, v in row.items() if k != "step" and v not in ("", None)}


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def cosine_factor(step: int, steps: int, lr: float, lr_min: float) -> float:
    """Multiplier of `lr` at `step`: cosine decay from lr to lr_min over `steps`."""
    progress = min(step, steps) / max(steps, 1)
    return (lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))) / lr


def cosine_schedule(optimizer: torch.optim.Optimizer, cfg: GanConfig | DenoiserConfig, lr: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_factor(s, cfg.steps, lr, cfg.lr_min))


def grad_norm(parameters) -> torch.Tensor:
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


def move_batch(batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool = False) -> dict[str, torch.Tensor]:
    """The batch's tensors on `device` (images NHWC in memory when `channels_last`)."""
    return {
        k: v.to(device, non_blocking=True, memory_format=memory_format(channels_last and v.dim() == 4))
        for k, v in batch.items()
        if isinstance(v, torch.Tensor)
    }


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.preserve_format


def use_channels_last(requested: bool, runtime: Runtime, *modules: nn.Module | None) -> bool:
    """Store the modules' 4-d weights NHWC when `requested` and safe; returns whether they are
    (the batches must then be NHWC too, `move_batch`).

    Not safe: a CPU bf16 run that trains a dilated convolution. PyTorch 2.13's CPU backward of a
    dilated conv in bf16 with NHWC input or weights returns wrong weight gradients (dilation 2:
    off by about the gradient's own size) or non-finite ones (3, 4), where NCHW and fp32 are
    right; the input gradient is right in every layout, so a frozen dilated network (PNGAN's
    D_d, RIDNet) does not count (`tests/test_train_loop.py`). The noise-aware generator's blocks
    and a trained RIDNet are dilated; their tasks run NCHW on such a run. Call it after freezing.
    """
    present = [m for m in modules if m is not None]
    trains_dilated = any(isinstance(m, nn.Conv2d) and max(m.dilation) > 1 and m.weight.requires_grad
                         for module in present for m in module.modules())
    if not requested or (trains_dilated and runtime.device.type == "cpu" and runtime.precision == "bf16"):
        return False
    for module in present:
        module.to(memory_format=torch.channels_last)
    return True


def same_shape_batches(dataset: Dataset, batch: int) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(index of the first item, stacked batch) over keys 0 .. len-1, consecutive items of equal
    size stacked up to `batch` (validation sets may hold images of different sizes)."""
    pending: list[dict[str, torch.Tensor]] = []
    first = 0
    for key in range(len(dataset)):
        item = dataset[key]
        if pending and (len(pending) == batch or item["clean"].shape != pending[0]["clean"].shape):
            yield first, {k: torch.stack([p[k] for p in pending]) for k in pending[0] if isinstance(pending[0][k], torch.Tensor)}
            pending, first = [], key
        pending.append(item)
    if pending:
        yield first, {k: torch.stack([p[k] for p in pending]) for k in pending[0] if isinstance(pending[0][k], torch.Tensor)}


@dataclass
class StepResult:
    losses: dict[str, torch.Tensor]  # 0-dim, still on the device: read back at sync points only
    diagnostics: dict[str, float] = field(default_factory=dict)  # only on log steps


class PendingSteps:
    """Steps whose losses and NaN-guard verdicts are still on the device. `settle` (at log,
    validation and checkpoint steps) reads them all back in one host sync, reports and logs the
    skipped updates in step order, lets the guard count them, and logs the diagnosed step."""

    def __init__(self, guard: NanGuard, log: CsvLog, ctx: DistContext):
        self.guard, self.log, self.ctx = guard, log, ctx
        self.items: list[tuple[int, bool, StepResult, dict[str, torch.Tensor]]] = []

    def add(self, step: int, diagnose: bool, result: StepResult) -> None:
        self.items.append((step, diagnose, result, self.guard.flags))

    def _read_back(self) -> Iterator[float]:
        tensors = [t.detach().float().reshape(()) for _, _, r, flags in self.items for t in (*r.losses.values(), *flags.values())]
        return iter(torch.stack(tensors).tolist() if tensors else [])

    def settle(self) -> dict[str, float] | None:
        """Process the pending steps; returns the last one's losses (None when nothing was pending)."""
        values, items, self.items = self._read_back(), self.items, []
        losses = None
        for step, diagnose, result, flags in items:
            losses = {k: next(values) for k in result.losses}
            skipped = [what for what in flags if next(values) > 0]
            if skipped and self.ctx.is_main:
                tqdm.write(f"step {step}: non-finite {', '.join(skipped)}; update skipped")
            if diagnose:
                row = mean_over_processes(self.ctx, {**losses, **result.diagnostics})
                self.log.append({"step": step, "skipped": "+".join(skipped), **row})
            elif skipped:
                self.log.append({"step": step, "skipped": "+".join(skipped), **losses})
            self.guard.record(step, skipped, losses)
        return losses


class Task(Protocol):
    """What a trainer gives the shared loop."""

    loop: str  # 'pngan' | 'denoiser': the checkpoint's loop name
    channels_last: bool  # networks and batches NHWC (`use_channels_last`)

    def train_step(self, batch: dict[str, torch.Tensor], step: int, diagnose: bool) -> StepResult: ...

    def validate(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def describe(self) -> dict[str, Any]: ...  # what the summary should record about the task

    def identity(self) -> str: ...  # the settings' identity hash, plus any input weights it depends on

    def networks(self) -> dict[str, torch.nn.Module]: ...  # the trained networks (unwrapped)

    def export(self, out_dir: Path, summary: dict[str, Any]) -> Path: ...


@dataclass
class Runtime:
    """Where a run executes: process group, device, precision."""

    ctx: DistContext
    precision: str

    @property
    def device(self) -> torch.device:
        return self.ctx.device


@contextlib.contextmanager
def seeded(cfg: GanConfig | DenoiserConfig) -> Iterator[None]:
    """seed_everything(cfg.seed, cfg.deterministic); cuDNN autotuning unless deterministic (the
    crops have one size). Both global flags are restored after."""
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    seed_everything(cfg.seed, cfg.deterministic)
    torch.backends.cudnn.benchmark = not cfg.deterministic
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


def make_runtime(cfg: GanConfig | DenoiserConfig, ctx: DistContext) -> Runtime:
    return Runtime(ctx, resolve_precision(cfg.precision, ctx.device))


def data_fingerprint(dataset: Dataset) -> str:
    """What the training set holds (see `PairDataset.fingerprint`); '' for a dataset without one."""
    fingerprint = getattr(dataset, "fingerprint", None)
    return fingerprint() if callable(fingerprint) else ""


def resume(task: Task, cfg: GanConfig | DenoiserConfig, ctx: DistContext, out_dir: Path, guard: NanGuard, data: str = "") -> tuple[CheckpointStore, dict[str, Any]]:
    """The run's checkpoint store and the checkpoint resumed from ({} when starting fresh).

    The checkpoint must match the task's identity, the kit's code (`code_digest`) and the
    training data's fingerprint `data`: a persisted run never resumes on another data set, nor
    after the code that trains it changed (DVC reruns the stage then, and must get a fresh run).
    """
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    barrier(ctx)
    store = CheckpointStore(out_dir, task.loop, combined_identity(task.identity(), code_digest(), data), ctx)
    state = store.load(companions=[out_dir / TRAIN_LOG, out_dir / VAL_LOG])
    if state is None:
        return store, {}
    if state["step"] > cfg.steps:
        raise CheckpointError(
            f"{store.path}: has {state['step']} steps done, more than steps = {cfg.steps}; "
            f"set steps >= {state['step']} to continue it, or move the checkpoint away to train anew"
        )
    task.load_state_dict(state)
    guard.load_state_dict(state["guard"])
    restore_rng_state(state["rng"])
    if ctx.is_main:
        print(f"{store.path}: resuming at step {state['step']} of {cfg.steps}", flush=True)
    return store, state


def run(task: Task, cfg: GanConfig | DenoiserConfig, runtime: Runtime, train_dataset: Dataset, out_dir: str | Path, guard: NanGuard) -> dict[str, Any]:
    """Resume if possible, train to cfg.steps, validate, checkpoint, export; returns the summary."""
    ctx, out_dir = runtime.ctx, Path(out_dir)
    store, resumed = resume(task, cfg, ctx, out_dir, guard, data_fingerprint(train_dataset))
    start = resumed.get("step", 0)
    train_log = CsvLog(out_dir / TRAIN_LOG, start, ctx.is_main)
    val_log = CsvLog(out_dir / VAL_LOG, start, ctx.is_main)
    sampler = StepSampler(len(train_dataset), cfg.batch, cfg.steps, stable_seed(cfg.seed, STREAM_SAMPLER), ctx.rank, ctx.world_size, start)
    loader = make_loader(train_dataset, sampler, cfg.num_workers, pin_memory=runtime.device.type == "cuda")
    # training time and last losses carry over resumptions, so a finished run rerun reports them
    started, earlier_seconds = time.perf_counter(), _recorded_seconds(out_dir) if resumed else 0.0
    last_losses: dict[str, float] = resumed.get("last_losses", {})
    total_seconds = lambda: earlier_seconds + time.perf_counter() - started  # noqa: E731  (unrounded: a short run is not 0)

    def save(step: int) -> None:
        store.save(step, cfg.to_dict(), guard=guard.state_dict(), last_losses=last_losses, **task.state_dict())
        if ctx.is_main:
            atomic_write_text(out_dir / RUN_INFO, json.dumps({"step": step, "train_seconds": total_seconds()}) + "\n")

    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {task.loop}", disable=not ctx.is_main, dynamic_ncols=True)
    pending = PendingSteps(guard, train_log, ctx)
    step = start
    for step, batch in enumerate(loader, start=start + 1):
        guard.begin_step()
        diagnose = step % cfg.log_every == 0
        pending.add(step, diagnose, task.train_step(move_batch(batch, runtime.device, task.channels_last), step - 1, diagnose))
        bar.update(1)
        validate = cfg.val_every and step % cfg.val_every == 0 and step != cfg.steps
        checkpoint = step % cfg.ckpt_every == 0 and step != cfg.steps
        if diagnose or validate or checkpoint or step == cfg.steps:  # the only host syncs of the loop
            last_losses = pending.settle() or last_losses
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(last_losses.items())[:4]}, refresh=False)
        if validate:
            _validate(task, ctx, val_log, step)
        if checkpoint:
            save(step)
    bar.close()
    if start < cfg.steps:  # the last step: validate and checkpoint it (a finished run skips this)
        _validate(task, ctx, val_log, step)
        save(step)
    summary = {
        "steps": step,
        "resumed_from": start,
        "skipped_steps": guard.total_skipped,
        "seconds": round(total_seconds(), 2),  # all sessions of the run
        "session_seconds": round(time.perf_counter() - started, 2),
        "world_size": ctx.world_size,
        "identity": store.identity,  # settings, input weights and training data
        "last_losses": last_losses,
        "validation": val_log.last(),
        **task.describe(),
        **run_info(runtime.device, runtime.precision, cfg.seed),
        "replica_digests": replica_digests(task, ctx),
    }
    summary = json.loads(json.dumps(summary, default=str))  # plain types (torch.load(weights_only) safe)
    if ctx.is_main:
        summary["file"] = str(task.export(out_dir, split_machine_facts(summary)[0]))  # the file: byte-identical anywhere
    barrier(ctx)
    return summary


def _recorded_seconds(out_dir: Path) -> float:
    """Training time of the earlier sessions of a resumed run (0 when not recorded)."""
    try:
        return float(json.loads((out_dir / RUN_INFO).read_text())["train_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def combined_identity(*parts: str) -> str:
    """One identity hash from several (the settings' hash, digests of input weights)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def weights_digest(networks: dict[str, torch.nn.Module]) -> str:
    """SHA-256 over the trained parameters (names and bytes)."""
    h = hashlib.sha256()
    for name, network in sorted(networks.items()):
        for key, p in network.named_parameters():
            h.update(f"{name}.{key}".encode())
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def replica_digests(task: Task, ctx: DistContext) -> list[str]:
    """Every process's `weights_digest`; data-parallel replicas that differ are an error."""
    digest = weights_digest(task.networks())
    if not ctx.enabled:
        return [digest]
    digests: list[str] = [""] * ctx.world_size
    torch.distributed.all_gather_object(digests, digest)
    if len(set(digests)) > 1:
        raise RuntimeError(f"data-parallel replicas ended with different weights (digests per rank: {digests})")
    return digests


def _validate(task: Task, ctx: DistContext, log: CsvLog, step: int) -> None:
    """Validation runs on rank 0 (on the unwrapped networks) and goes to its log; the others wait."""
    if ctx.is_main:
        values = task.validate()
        if values:
            log.append({"step": step, **values})
            tqdm.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    barrier(ctx)
