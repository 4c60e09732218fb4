"""Two CPU processes (gloo) under torchrun: replicas stay identical, rank 0 alone writes, and the
run resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pngan.images import write_png
from pngan.models import build
from pngan.models.files import save_network_file

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _write_pairs(root: Path, n: int, size: int = 24) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        clean = rng.integers(20, 220, size=(size, size, 3), dtype=np.uint8)
        noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).round().astype(np.uint8)
        write_png(root / "clean" / f"img{i}.png", clean)
        write_png(root / "noisy" / f"img{i}.png", noisy)


def _torchrun(args: list[str], tmp_path: Path, nproc: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m", "pngan", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)


def _train_resume_check(tmp_path: Path, nproc: int, device: str, precision: str) -> dict:
    """Train 3 steps on `nproc` processes, then resume to 5: replicas identical, one writer,
    resumed from the checkpoint. Returns the first run's summary."""
    _write_pairs(tmp_path / "data" / "train", 4)
    denoiser = tmp_path / "denoiser.pt"
    save_network_file(denoiser, "denoiser", "dncnn", {"depth": 2, "width": 4, "batch_norm": False},
                      build("dncnn", depth=2, width=4, batch_norm=False))  # a file names registry networks only
    section = {
        "generator": "trainer_standins:TinyGenerator",
        "generator_kwargs": {"width": 4},
        "discriminator": "trainer_standins:TinyDiscriminator",
        "discriminator_kwargs": {"width": 4},
        "input_noise": "trainer_standins:StandinAWGN",
        "crop": 16,
        "batch": 2,
        "steps": 3,
        "log_every": 1,
        "ckpt_every": 2,
        "val_every": 0,
        "precision": precision,
        "device": device,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train_pngan": section}))
    out = tmp_path / "run"
    common = ["train-pngan", "--params", "params.yaml", "--data", "data", "--denoiser", str(denoiser), "--out", "run"]

    first = _torchrun([*common, "--summary", "first.json"], tmp_path, nproc)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((tmp_path / "first.json").read_text())
    assert summary["world_size"] == nproc and summary["steps"] == 3
    digests = summary["replica_digests"]
    assert len(digests) == nproc and len(set(digests)) == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "generator.pt", "run_info.json", "train_log.csv"]
    rows = (out / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "1", "2", "3"]  # one process logs
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and state["config"]["steps"] == 3

    second = _torchrun([*common, "--summary", "second.json", "--set", "steps=5"], tmp_path, nproc)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = json.loads((tmp_path / "second.json").read_text())
    assert resumed["resumed_from"] == 3 and resumed["steps"] == 5
    assert len(set(resumed["replica_digests"])) == 1 and resumed["replica_digests"][0] != digests[0]
    assert second.stdout.count("resuming at step 3 of 5") == 1  # printed by rank 0 only
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 5
    assert [r.split(",")[0] for r in (out / "train_log.csv").read_text().splitlines()] == ["step", "1", "2", "3", "4", "5"]
    return summary


@pytest.mark.slow
def test_two_process_training_keeps_replicas_identical_and_resumes(tmp_path):
    _train_resume_check(tmp_path, nproc=2, device="cpu", precision="fp32")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_one_process_per_gpu_with_nccl_and_bf16(tmp_path):
    summary = _train_resume_check(tmp_path, nproc=torch.cuda.device_count(), device="auto", precision="auto")
    assert summary["device"].startswith("cuda") and summary["precision"] == "bf16"
