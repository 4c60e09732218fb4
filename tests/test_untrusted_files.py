"""Safe by default: a weights or checkpoint file never chooses which code runs, and every user
error on the command line, in `python -m pngan.params` and in a stage is one line, exit code 2."""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_GENERATOR_ARCH, TINY_GENERATOR_INPUT
from trainer_standins import tiny_denoiser_config, tiny_pairs

from pngan import models
from pngan.cli import main
from pngan.errors import CheckpointError, ParamsError
from pngan.generate import GeneratorNoise, load_generator
from pngan.images import write_png
from pngan.models.files import CHECKPOINT_FORMAT, save_network_file
from pngan.runtime import atomic_save, atomic_write_text
from pngan.train import train_denoiser
from pngan.train.config import GanConfig

HAS_CUDA = torch.cuda.is_available()


def _payload(marker):
    """Constructor arguments that would create `marker` if the named class were ever called."""
    return {"args": [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('ran')"]}


def _generate(tmp_path, checkpoint, clean_dir, capsys):
    code = main(["generate", "--checkpoint", str(checkpoint), "--input", str(clean_dir), "--output", str(tmp_path / "out")])
    return code, capsys.readouterr().err


def _assert_refused(code, err, marker, *phrases):
    assert not marker.exists(), "the file ran code"
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    for phrase in phrases:
        assert phrase in err, err


def test_a_generator_file_cannot_name_code_to_build_its_network(tmp_path, clean_dir, capsys):
    marker = tmp_path / "marker"
    path = save_network_file(tmp_path / "evil.pt", "generator", "subprocess:Popen", _payload(marker), torch.nn.Conv2d(3, 3, 1), input=TINY_GENERATOR_INPUT)
    _assert_refused(*_generate(tmp_path, path, clean_dir, capsys), marker, str(path), "'subprocess:Popen' is a code path")
    # the keyword that marks the user's own settings as trusted cannot be smuggled in as an argument
    sneaky = save_network_file(tmp_path / "sneaky.pt", "generator", "subprocess:Popen", {**_payload(marker), "trusted": True}, torch.nn.Conv2d(3, 3, 1), input=TINY_GENERATOR_INPUT)
    _assert_refused(*_generate(tmp_path, sneaky, clean_dir, capsys), marker, "is a code path")


def test_a_generator_file_cannot_name_code_for_its_input_noise(tmp_path, clean_dir, capsys):
    marker = tmp_path / "marker"
    arch, kwargs = TINY_GENERATOR_ARCH
    spec = {"setting": 1, "noise": "subprocess:Popen", "noise_kwargs": _payload(marker)}
    path = save_network_file(tmp_path / "evil.pt", "generator", arch, kwargs, models.build(arch, **kwargs), input=spec)
    _assert_refused(*_generate(tmp_path, path, clean_dir, capsys), marker, "noise model 'subprocess:Popen' is a code path")
    with pytest.raises(CheckpointError):
        GeneratorNoise.from_file(path)
    assert not marker.exists()


def test_a_training_checkpoint_cannot_name_code_either(tmp_path):
    marker = tmp_path / "marker"
    cfg = GanConfig(generator="dncnn").to_dict()
    cfg.update(generator="subprocess:Popen", generator_kwargs=_payload(marker))
    atomic_save({"format": CHECKPOINT_FORMAT, "loop": "pngan", "step": 1, "config": cfg,
                 "models": {"generator": {}}}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="is a code path"):
        load_generator(tmp_path / "checkpoint.pt")
    assert not marker.exists()


def test_unknown_names_and_arguments_in_a_file_are_one_line(tmp_path, clean_dir, capsys):
    marker = tmp_path / "never"
    arch, kwargs = TINY_GENERATOR_ARCH
    net = models.build(arch, **kwargs)
    nope = save_network_file(tmp_path / "nope.pt", "generator", "nope", kwargs, net, input=TINY_GENERATOR_INPUT)
    _assert_refused(*_generate(tmp_path, nope, clean_dir, capsys), marker, "unknown network 'nope'", "known: aware_generator, dncnn")
    typo = save_network_file(tmp_path / "typo.pt", "generator", arch, {**kwargs, "widht": 4}, net, input=TINY_GENERATOR_INPUT)
    _assert_refused(*_generate(tmp_path, typo, clean_dir, capsys), marker, "has no argument 'widht' (did you mean 'width'?)")


def test_random_bytes_never_suggest_unpickling(tmp_path, clean_dir, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    code, err = _generate(tmp_path, junk, clean_dir, capsys)
    _assert_refused(code, err, tmp_path / "never", f"{junk}: not a PyTorch file, or damaged")
    assert "weights_only" not in err
    objects = tmp_path / "objects.pt"
    torch.save({"when": np.datetime64("2026-01-01")}, objects)  # a pickled object besides tensors
    code, err = _generate(tmp_path, objects, clean_dir, capsys)
    _assert_refused(code, err, tmp_path / "never", "holds Python objects", "never unpickles")
    assert "weights_only" not in err


def test_user_code_loads_only_when_the_caller_names_it(tmp_path):
    from pngan.models.files import load_network_file

    cfg = tiny_denoiser_config(steps=1)
    train_denoiser(cfg, tiny_pairs(), None, tmp_path)
    with pytest.raises(CheckpointError, match="is a code path"):
        load_network_file(tmp_path / "denoiser.pt", "denoiser")
    network, info = load_network_file(tmp_path / "denoiser.pt", "denoiser", arch=cfg.arch)
    assert info["arch"] == cfg.arch and type(network).__name__ == "TinyDenoiser"


@pytest.mark.parametrize(
    "override, phrase",
    [
        ("generator=nope", "generator: unknown network 'nope'"),
        ("generator_kwargs={widht: 16}", "generator_kwargs: network 'smnet' has no argument 'widht' (did you mean 'width'?)"),
        ("generator_kwargs={width: abc}", "argument 'width' expects int (default 64), got 'abc'"),
        ("input_noise=nope", "input_noise: unknown noise model 'nope'"),
        ("steps=many", "expected an integer, got 'many'"),
    ],
)
def test_bad_training_settings_are_one_line_before_any_data_is_read(tmp_path, capsys, override, phrase):
    missing = tmp_path / "no-data"  # never reached: settings are checked first
    code = main(["train-pngan", "--data", str(missing), "--out", str(tmp_path / "run"), "--denoiser", str(tmp_path / "d.pt"), "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and phrase in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(HAS_CUDA, reason="checks the message on a machine without CUDA")
def test_a_device_this_machine_lacks_is_one_line(tmp_path, generator_file, clean_dir, capsys):
    code = main(["generate", "--checkpoint", str(generator_file), "--input", str(clean_dir), "--output", str(tmp_path / "o"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "device 'cuda': this machine has no CUDA GPU" in err, err
    code = main(["train-denoiser", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--set", "device=cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "device 'cuda': this machine has no CUDA GPU" in err, err
    with pytest.raises(ParamsError, match="'gpu' is not a device name"):
        GanConfig(device="gpu")


def test_resuming_a_longer_run_with_fewer_steps_is_refused(tmp_path):
    train_denoiser(tiny_denoiser_config(steps=3), tiny_pairs(), None, tmp_path)
    with pytest.raises(CheckpointError, match=r"has 3 steps done, more than steps = 2; set steps >= 3"):
        train_denoiser(tiny_denoiser_config(steps=2), tiny_pairs(), None, tmp_path)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        files = [atomic_write_text(tmp_path / "a.json", "{}"), atomic_save({"x": torch.zeros(1)}, tmp_path / "b.pt"),
                 write_png(tmp_path / "c.png", np.zeros((2, 2, 3), np.uint8))]
    finally:
        os.umask(old)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.pt", "c.png"]  # no temporary left


def test_params_check_validates_every_section_in_one_line(tmp_path, capsys):
    import yaml

    from pngan.params.__main__ import main as params_main

    assert params_main(["check"]) == 0 and "sections valid" in capsys.readouterr().out
    params = yaml.safe_load(open("params.yaml"))
    cases = [
        ("prepare", "root", "somewhere", "prepare.root is set (somewhere) but source is 'simulated'"),
        ("train_pngan", "generator", "nope", "generator: unknown network 'nope'"),
        ("noise_models", "models", ["awgn", "nope@camera"], "unknown noise model 'nope'"),
        ("pgap", "stepz", 3, "unknown parameter 'stepz' (did you mean 'steps'?)"),
        ("runtime", "precision", "fp16", "precision must be auto, fp32 or bf16, got 'fp16'"),
        ("runtime", "seeds", 1, "[runtime]: unknown parameter 'seeds' (did you mean 'seed'?)"),
        ("finetune", "log_every", 0, "log_every must be >= 1, got 0"),
        ("tables", "headline_fake_ratio", 0.3, "headline_fake_ratio 0.3 is not one of ablation.fake_ratios"),
    ]
    for section, key, value, phrase in cases:
        bad = {**params, section: {**params[section], key: value}}
        path = tmp_path / f"{section}.yaml"
        path.write_text(yaml.safe_dump(bad))
        assert params_main(["check", "--params", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and phrase in err, err
