"""An interrupted run, restarted, ends bit-identical to an uninterrupted one (CPU, deterministic,
fp32), for both training loops; its logs are those of the uninterrupted run."""

from __future__ import annotations

import copy
import csv
import json

import numpy as np

import pytest
import torch
from trainer_standins import TinyDenoiser, tiny_denoiser_config, tiny_gan_config, tiny_pairs

from pngan.train import train_denoiser, train_pngan
from pngan.train.denoiser import DenoiserTask
from pngan.train.gan import PnganTask


class Interrupted(Exception):
    pass


def _interrupt_at(monkeypatch, task_cls, stop_step: int) -> None:
    """Make `task_cls.train_step` raise when asked for 0-based step `stop_step`."""
    original = task_cls.train_step

    def step(self, batch, step, diagnose):
        if step == stop_step:
            raise Interrupted
        return original(self, batch, step, diagnose)

    monkeypatch.setattr(task_cls, "train_step", step)


def _log(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def _assert_same_tree(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tree(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def assert_same_training_state(straight_dir, resumed_dir) -> None:
    """The checkpoints of a straight and a resumed run hold the same networks, optimisers and schedules."""
    straight = torch.load(straight_dir / "checkpoint.pt", weights_only=True)
    resumed = torch.load(resumed_dir / "checkpoint.pt", weights_only=True)
    for part in ("models", "optimizers", "schedulers"):
        _assert_same_tree(straight[part], resumed[part], part)


def test_gan_resume_is_bit_identical(tmp_path, monkeypatch):
    cfg = tiny_gan_config(steps=6, ckpt_every=2, log_every=1)
    data, dd = tiny_pairs(), TinyDenoiser(4)
    train_pngan(cfg, data, None, dd, tmp_path / "straight")

    with monkeypatch.context() as m:
        _interrupt_at(m, PnganTask, 3)  # 3 steps done, the checkpoint holds 2
        with pytest.raises(Interrupted):
            train_pngan(cfg, data, None, dd, tmp_path / "resumed")
    assert len(_log(tmp_path / "resumed" / "train_log.csv")) == 3
    summary = train_pngan(cfg, data, None, dd, tmp_path / "resumed")
    assert summary["resumed_from"] == 2

    assert_same_training_state(tmp_path / "straight", tmp_path / "resumed")
    g_straight = torch.load(tmp_path / "straight" / "generator.pt", weights_only=True)["state_dict"]
    g_resumed = torch.load(tmp_path / "resumed" / "generator.pt", weights_only=True)["state_dict"]
    _assert_same_tree(g_straight, g_resumed)
    # the redone step 3 was logged once, with the values of the uninterrupted run
    assert _log(tmp_path / "resumed" / "train_log.csv") == _log(tmp_path / "straight" / "train_log.csv")


def test_resume_without_optimizer_state_is_detected(tmp_path, monkeypatch):
    """Control: a restart that loses the Adam moments ends elsewhere, so the comparisons above can fail."""
    cfg = tiny_denoiser_config(steps=4, ckpt_every=2)
    data = tiny_pairs()
    train_denoiser(cfg, data, None, tmp_path / "straight")
    with monkeypatch.context() as m:
        _interrupt_at(m, DenoiserTask, 3)
        with pytest.raises(Interrupted):
            train_denoiser(cfg, data, None, tmp_path / "broken")
    path = tmp_path / "broken" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    state["optimizers"]["denoiser"]["state"] = {}
    torch.save(state, path)
    train_denoiser(cfg, data, None, tmp_path / "broken")
    a = torch.load(tmp_path / "straight" / "denoiser.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "broken" / "denoiser.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_denoiser_resume_is_bit_identical(tmp_path, monkeypatch):
    cfg = tiny_denoiser_config(steps=5, ckpt_every=2, log_every=1)
    data = tiny_pairs()
    train_denoiser(cfg, data, None, tmp_path / "straight")
    with monkeypatch.context() as m:
        _interrupt_at(m, DenoiserTask, 4)
        with pytest.raises(Interrupted):
            train_denoiser(cfg, data, None, tmp_path / "resumed")
    summary = train_denoiser(cfg, data, None, tmp_path / "resumed")
    assert summary["resumed_from"] == 4 and summary["steps"] == 5
    assert_same_training_state(tmp_path / "straight", tmp_path / "resumed")
    assert _log(tmp_path / "resumed" / "train_log.csv") == _log(tmp_path / "straight" / "train_log.csv")


def test_finished_run_is_not_retrained_and_longer_runs_continue(tmp_path):
    cfg = tiny_denoiser_config(steps=2)
    data = tiny_pairs()
    done = train_denoiser(cfg, data, None, tmp_path)
    first = torch.load(tmp_path / "denoiser.pt", weights_only=True)["state_dict"]
    saved = json.loads((tmp_path / "run_info.json").read_text())["train_seconds"]  # unrounded, beside the checkpoint
    assert 0 < saved <= done["seconds"] + 0.01
    again = train_denoiser(cfg, data, None, tmp_path)
    assert again["resumed_from"] == 2 and again["steps"] == 2
    # the rerun reports the run's training time and last losses, not those of an empty session
    assert again["last_losses"] == done["last_losses"] != {}
    assert again["seconds"] == pytest.approx(saved + again["session_seconds"], abs=0.01)
    _assert_same_tree(first, torch.load(tmp_path / "denoiser.pt", weights_only=True)["state_dict"])
    longer = train_denoiser(tiny_denoiser_config(steps=3), data, None, tmp_path)
    assert longer["resumed_from"] == 2 and longer["steps"] == 3
    assert longer["seconds"] == pytest.approx(saved + longer["session_seconds"], abs=0.02)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 3


def test_a_run_never_resumes_on_other_training_data(tmp_path):
    """Same settings, other data: the finished checkpoint is moved aside and training restarts."""
    from pngan.data.pairs import FileImage, Pair
    from pngan.data.patches import PairDataset
    from pngan.images import write_png

    def folder(name, offset):
        pairs = []
        for i in range(2):
            clean = np.full((16, 16, 3), 60 + 40 * i + offset, np.uint8)
            write_png(tmp_path / name / "clean" / f"{i}.png", clean)
            write_png(tmp_path / name / "noisy" / f"{i}.png", clean + 9)
            pairs.append(Pair(str(i), FileImage(tmp_path / name / "noisy" / f"{i}.png"), FileImage(tmp_path / name / "clean" / f"{i}.png")))
        return PairDataset(pairs, crop=8, seed=0)

    first, other = folder("a", 0), folder("b", 3)
    assert first.fingerprint() != other.fingerprint() and first.fingerprint() == folder("a", 0).fingerprint()
    cfg = tiny_denoiser_config(steps=2)
    train_denoiser(cfg, first, None, tmp_path / "run")
    train_denoiser(cfg, other, None, tmp_path / "run")
    assert list((tmp_path / "run").glob("checkpoint.pt.stale-*")), "the checkpoint of the first data set was resumed"


def test_images_redrawn_under_the_same_names_change_the_fingerprint(tmp_path):
    # a stage that redraws its fake pairs writes the same file names, often of the same size
    from pngan.data.pairs import FileImage, Pair
    from pngan.data.patches import PairDataset
    from pngan.images import write_png

    def draw(value):
        write_png(tmp_path / "noisy.png", np.full((16, 16, 3), value, np.uint8))
        write_png(tmp_path / "clean.png", np.full((16, 16, 3), 50, np.uint8))
        return PairDataset([Pair("a", FileImage(tmp_path / "noisy.png"), FileImage(tmp_path / "clean.png"))], crop=8).fingerprint()

    before = draw(60)
    size = (tmp_path / "noisy.png").stat().st_size
    after = draw(61)
    assert (tmp_path / "noisy.png").stat().st_size == size  # names and sizes alike: only the contents tell
    assert after != before and draw(60) == before


def test_a_run_never_resumes_after_the_code_changed(tmp_path, monkeypatch):
    """DVC reruns a training stage when its code changes; the persisted checkpoint must not be
    picked up as finished then."""
    from pngan.train import loop

    cfg, data = tiny_denoiser_config(steps=2), tiny_pairs()
    done = train_denoiser(cfg, data, None, tmp_path)
    assert train_denoiser(cfg, data, None, tmp_path)["resumed_from"] == 2  # same code: resumed
    monkeypatch.setattr(loop, "code_digest", lambda: "edited-code")
    again = train_denoiser(cfg, data, None, tmp_path)
    assert again["resumed_from"] == 0 and again["identity"] != done["identity"]
    assert (tmp_path / f"checkpoint.pt.stale-{done['identity']}").is_file()


def test_code_digest_follows_the_package_source():
    from pngan import runtime

    digest = runtime.code_digest()
    assert len(digest) == 16 and digest == runtime.code_digest()
    runtime.code_digest.cache_clear()
    assert runtime.code_digest() == digest  # a pure function of the files, recomputed alike


def test_a_checkpoint_of_unfused_adam_resumes_in_the_fused_one():
    # checkpoints of earlier kit versions hold plain Adam states (step counts on the host)
    from pngan.train import loop

    torch.manual_seed(0)
    old_net, new_net = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    old = torch.optim.Adam(old_net.parameters(), lr=1e-2)
    x = torch.randn(8, 4)

    def step(net, opt):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()

    step(old_net, old)
    new_net.load_state_dict(old_net.state_dict())
    new = loop.adam(new_net.parameters(), 1e-3, (0.9, 0.999))
    loop.load_optimizer(new, copy.deepcopy(old.state_dict()))  # as if read from a file
    new.found_inf = torch.zeros(())
    step(old_net, old)
    step(new_net, new)
    assert all(g["fused"] and g["lr"] == 1e-2 for g in new.param_groups)
    assert [float(s["step"]) for s in new.state.values()] == [2.0, 2.0]
    for a, b in zip(old_net.parameters(), new_net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_scratch_builds_are_remade_by_other_code(monkeypatch):
    """Notebooks run by hand reuse their smoke data and generators from scratch, but never those
    another version of the kit built."""
    from pngan import paths

    built = []
    build = lambda folder: (built.append(folder), (folder / "done").write_text("x"))  # noqa: E731
    first = paths.made_once("thing", "done", build)
    assert paths.made_once("thing", "done", build) == first and len(built) == 1
    monkeypatch.setattr(paths, "code_digest", lambda: "edited-code")
    second = paths.made_once("thing", "done", build)
    assert second != first and len(built) == 2 and (first / "done").is_file()
