"""The training loops read values back from the device only at their sync points (log,
validation and checkpoint steps, and the last step): a GPU never idles while the host waits for a
loss or a NaN check in between.

Without a GPU in CI the reads are caught where they start: every Tensor method that hands a value
to Python is wrapped, and a call made from the kit's own code is charged to the current step.
(The data loader's reads of its CPU index tensors are not device syncs and are not counted.)
"""

from __future__ import annotations

import traceback
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from trainer_standins import TinyDenoiser, profile_pairs, tiny_aware_config, tiny_denoiser_config, tiny_gan_config, tiny_pairs

import pngan
from pngan.train import train_denoiser, train_pngan
from pngan.train.aware import AwarePnganTask, train_pngan_aware
from pngan.train.denoiser import DenoiserTask
from pngan.train.gan import PnganTask

READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__", "__format__")
KIT = str(Path(pngan.__file__).parent)
DATA = str(Path(KIT, "data"))


@pytest.fixture
def host_reads(monkeypatch):
    """step -> set of 'file:line' in the kit that read a tensor's value during that step."""
    state = {"step": None, "reads": defaultdict(set)}

    def wrap(method):
        def read(self, *args, **kwargs):
            caller = traceback.extract_stack(limit=2)[0]
            if state["step"] is not None and caller.filename.startswith(KIT) and not caller.filename.startswith(DATA):
                state["reads"][state["step"]].add(f"{Path(caller.filename).name}:{caller.lineno}")
            return method(self, *args, **kwargs)

        return read

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, wrap(getattr(torch.Tensor, name)))
    for task in (PnganTask, AwarePnganTask, DenoiserTask):
        step_fn = task.train_step

        def counted(self, batch, step, diagnose, _step_fn=step_fn):
            state["step"] = step + 1  # the loop's 1-based step, until the next one starts
            return _step_fn(self, batch, step, diagnose)

        monkeypatch.setattr(task, "train_step", counted)
    return state["reads"]


@pytest.mark.parametrize("loop", ["pngan", "pngan_aware", "denoiser"])
def test_the_loop_reads_the_device_only_at_its_sync_points(loop, tmp_path, host_reads):
    cadence = dict(steps=12, log_every=4, ckpt_every=6, val_every=0)
    if loop == "pngan":
        train_pngan(tiny_gan_config(**cadence), tiny_pairs(), None, TinyDenoiser(4), tmp_path)
    elif loop == "pngan_aware":
        train_pngan_aware(tiny_aware_config(**cadence), profile_pairs(), None, TinyDenoiser(4), tmp_path)
    else:
        train_denoiser(tiny_denoiser_config(**cadence), tiny_pairs(), None, tmp_path)
    sync_points = {4, 6, 8, 12}
    assert set(host_reads) - sync_points == set(), {s: sorted(host_reads[s]) for s in set(host_reads) - sync_points}
    assert {4, 8} <= set(host_reads)  # the log steps do read (the probe sees reads at all)

