"""Safe by default: `generate` never writes into, around or through its input, outputs appear
whole or not at all, and `generate` / `evaluate` refuse bad settings and ambiguous or unpaired
data up front with one `error:` line (exit 2) that names the file, leaving every input intact."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from pngan.cli import main
from pngan.images import read_image, write_png


def _hashes(*paths: Path) -> dict[str, str]:
    """sha256 of every file under `paths` (links followed), by path."""
    files = [p for root in paths for p in ([root] if root.is_file() else sorted(root.rglob("*"))) if p.is_file()]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _refused(args: list[str], capsys) -> str:
    """Run the CLI, expecting a user error: exit 2 and exactly one stderr line `error: ...`."""
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _generate(generator_file: Path, input_dir: Path, output: Path, *extra: str) -> list[str]:
    return ["generate", "--checkpoint", str(generator_file), "--input", str(input_dir), "--output", str(output), "--device", "cpu", *extra]


def _noisy_copy(clean_dir: Path, folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for path in sorted(clean_dir.glob("*.png")):
        clean = read_image(path).astype(int)
        write_png(folder / path.name, np.clip(clean + rng.integers(-9, 10, size=clean.shape), 0, 255).astype(np.uint8))
    return folder


# ---- generate: the output never is, contains or lies inside the input ----------------------------


@pytest.mark.parametrize("case", ["same", "inside", "link", "through_link", "contains", "draw_link"])
def test_an_output_overlapping_the_input_is_refused(tmp_path, generator_file, clean_dir, capsys, case):
    link = tmp_path / "link"
    os.symlink(clean_dir, link)
    output, extra = {
        "same": (clean_dir, ["--overwrite"]),
        "inside": (clean_dir / "noisy", []),
        "link": (link, ["--overwrite"]),
        "through_link": (link / "noisy", []),  # does not exist yet; its parent is a link to the input
        "contains": (tmp_path, ["--overwrite"]),
        "draw_link": (tmp_path / "draws", ["--overwrite", "--samples", "1"]),
    }[case]
    if case == "draw_link":  # an earlier run's numbered folder turned into a link to the input
        (tmp_path / "draws").mkdir()
        os.symlink(clean_dir, tmp_path / "draws" / "1")
    before = _hashes(clean_dir, generator_file)
    line = _refused(_generate(generator_file, clean_dir, output, *extra), capsys)
    assert str(output if case != "draw_link" else output / "1") in line and str(clean_dir) in line
    assert "choose a folder outside it" in line
    assert _hashes(clean_dir, generator_file) == before  # same files, same bytes: nothing written
    assert not (clean_dir / "noisy").exists()


def test_overwrite_replaces_only_the_files_it_writes(tmp_path, generator_file, clean_dir, capsys):
    out = tmp_path / "out"
    write_png(out / "a.png", np.zeros((2, 2, 3), np.uint8))  # an old result: replaced
    write_png(out / "c.png", np.zeros((2, 2, 3), np.uint8))  # the user's: kept
    (out / "notes").mkdir()
    (out / "notes" / "keep.txt").write_text("mine")
    outside = write_png(tmp_path / "elsewhere.png", np.zeros((2, 2, 3), np.uint8))
    os.symlink(outside, out / "b.png")  # a link where b.png goes: the link is replaced, not its target
    kept = _hashes(out / "c.png", out / "notes", outside)
    assert main(_generate(generator_file, clean_dir, out, "--overwrite")) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "notes"]
    assert read_image(out / "a.png").shape == (30, 40, 3) and not (out / "b.png").is_symlink()
    assert _hashes(out / "c.png", out / "notes", outside) == kept
    assert not list(tmp_path.glob(".out.partial-*"))


def test_overwrite_refuses_to_mix_draws_of_another_run(tmp_path, generator_file, clean_dir, capsys):
    out = tmp_path / "draws"
    assert main(_generate(generator_file, clean_dir, out, "--samples", "3")) == 0
    capsys.readouterr()  # its progress bar
    before = _hashes(out)
    # evaluate would count the old draw 3 with the two new ones
    line = _refused(_generate(generator_file, clean_dir, out, "--samples", "2", "--overwrite"), capsys)
    assert line == f"error: {out}: holds 3/ from another run, which `evaluate` would mix with this one; remove them or choose another output"
    # evaluate would score the numbered folders and ignore new top-level images
    assert f"{out}: holds 1/, 2/, 3/ from another run" in _refused(_generate(generator_file, clean_dir, out, "--overwrite"), capsys)
    assert _hashes(out) == before
    assert main(_generate(generator_file, clean_dir, out, "--samples", "3", "--overwrite")) == 0
    plain = tmp_path / "plain"
    assert main(_generate(generator_file, clean_dir, plain)) == 0
    capsys.readouterr()
    assert f"{plain}: holds a.png, b.png from another run" in _refused(_generate(generator_file, clean_dir, plain, "--samples", "2", "--overwrite"), capsys)


# ---- generate: outputs appear whole or not at all -----------------------------------------------


def test_an_undecodable_input_is_found_before_anything_is_written(tmp_path, generator_file, clean_dir, capsys):
    (clean_dir / "c.png").write_text("not an image")  # sorts after a.png and b.png
    before = _hashes(clean_dir)
    out = tmp_path / "out"
    line = _refused(_generate(generator_file, clean_dir, out), capsys)
    assert line.startswith(f"error: {clean_dir / 'c.png'}: cannot decode image")
    assert not out.exists() and _hashes(clean_dir) == before


def _truncate(path: Path) -> bytes:
    """Cut a PNG in half: its header still reads, its pixels do not. Returns the good bytes."""
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    return good


def test_a_failed_run_leaves_nothing_and_the_rerun_works(tmp_path, generator_file, clean_dir, capsys):
    good = _truncate(clean_dir / "b.png")  # a.png is written first, then b.png fails
    out = tmp_path / "out"
    assert main(_generate(generator_file, clean_dir, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {clean_dir / 'b.png'}: cannot decode image")  # after the progress bar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "generator.pt"]  # no output, no .out.partial-*
    (clean_dir / "b.png").write_bytes(good)
    assert main(_generate(generator_file, clean_dir, out)) == 0  # nothing blocks the rerun
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())  # not mkdtemp's 0700


def test_a_failed_overwrite_keeps_the_previous_results(tmp_path, generator_file, clean_dir, capsys):
    out = tmp_path / "out"
    assert main(_generate(generator_file, clean_dir, out, "--samples", "2")) == 0
    before = _hashes(out)
    _truncate(clean_dir / "b.png")
    assert main(_generate(generator_file, clean_dir, out, "--samples", "2", "--seed", "5", "--overwrite")) == 2
    assert _hashes(out) == before and not list(tmp_path.glob(".out.partial-*"))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("samples", ["0", "-1"])
def test_samples_below_one_are_refused(tmp_path, generator_file, clean_dir, capsys, samples):
    out = tmp_path / "out"
    line = _refused(_generate(generator_file, clean_dir, out, "--samples", samples), capsys)
    assert line == f"error: --samples {samples}: must be >= 1 (draws per image; leave it out for one image per input)"
    assert not out.exists()


def test_generate_refuses_two_inputs_with_one_stem(tmp_path, generator_file, clean_dir, capsys):
    write_png(clean_dir / "a.bmp", read_image(clean_dir / "a.png"))  # both would become a.png
    line = _refused(_generate(generator_file, clean_dir, tmp_path / "out"), capsys)
    assert "two images named 'a'" in line and "a.bmp" in line and "a.png" in line
    assert not (tmp_path / "out").exists()


# ---- evaluate -----------------------------------------------------------------------------------


@pytest.fixture
def noisy_dirs(tmp_path, clean_dir):
    return _noisy_copy(clean_dir, tmp_path / "real", 1), _noisy_copy(clean_dir, tmp_path / "fake", 2)


def _evaluate(clean: Path, real: Path, fake: Path, *extra: str) -> list[str]:
    return ["evaluate", "--clean", str(clean), "--real", str(real), "--fake", str(fake), *extra]


@pytest.mark.parametrize("side", ["clean", "real", "fake"])
def test_evaluate_refuses_two_images_with_one_stem(clean_dir, noisy_dirs, capsys, side):
    real, fake = noisy_dirs
    folder = {"clean": clean_dir, "real": real, "fake": fake}[side]
    write_png(folder / "a.bmp", read_image(folder / "a.png"))
    before = _hashes(clean_dir, real, fake)
    line = _refused(_evaluate(clean_dir, real, fake), capsys)
    assert line == f"error: {folder / 'a.png'}: two images named 'a' in {folder} (a.bmp, a.png)"
    assert _hashes(clean_dir, real, fake) == before


@pytest.mark.parametrize("side", ["real", "fake"])
def test_evaluate_refuses_images_without_a_clean_partner(clean_dir, noisy_dirs, capsys, side):
    real, fake = noisy_dirs
    folder = real if side == "real" else fake
    write_png(folder / "c.png", read_image(folder / "a.png"))
    line = _refused(_evaluate(clean_dir, real, fake), capsys)
    label = "real" if side == "real" else "fake (1)"
    assert line == f"error: {folder}: 1 {label} image(s) without a clean partner in {clean_dir} (c.png); remove them or add their clean images"


def test_evaluate_refuses_images_beside_numbered_draw_folders(tmp_path, clean_dir, noisy_dirs, capsys):
    real, fake = noisy_dirs
    _noisy_copy(clean_dir, fake / "1", 3)  # fake/a.png, fake/b.png would be silently left out
    line = _refused(_evaluate(clean_dir, real, fake), capsys)
    assert line == f"error: {fake}: holds both images (a.png, b.png) and numbered draw folders; keep one layout"


@pytest.mark.parametrize("side", [1, 3])
def test_evaluate_refuses_images_too_small_for_akld(tmp_path, capsys, side):
    folders = [tmp_path / name for name in ("clean", "real", "fake")]
    for i, folder in enumerate(folders):
        write_png(folder / "big.png", np.full((8, 8, 3), 100 + i, np.uint8))
        write_png(folder / "tiny.png", np.full((side, side, 3), 100 + i, np.uint8))
    line = _refused(_evaluate(*folders), capsys)
    assert line == f"error: {folders[0] / 'tiny.png'}: image is {side}x{side} pixels; AKLD needs at least 4x4 (7x7 window); remove it or use larger images"


def test_evaluate_scores_the_smallest_allowed_image(tmp_path, capsys):
    folders = [tmp_path / name for name in ("clean", "real", "fake")]
    for i, folder in enumerate(folders):
        write_png(folder / "small.png", np.random.default_rng(i).integers(0, 256, (4, 4, 3), dtype=np.uint8))
    assert main(_evaluate(*folders)) == 0


def test_evaluate_json_path_is_checked_before_scoring(tmp_path, clean_dir, noisy_dirs, capsys):
    real, fake = noisy_dirs
    folder = tmp_path / "reports"
    folder.mkdir()
    line = _refused(_evaluate(clean_dir, real, fake, "--json", str(folder)), capsys)
    assert line == f"error: {folder}: --json names a folder; give a file name such as {folder / 'scores.json'}"
    assert capsys.readouterr().out == ""  # refused before the scores were computed and printed
    line = _refused(_evaluate(clean_dir, real, fake, "--json", str(clean_dir / "a.png")), capsys)
    assert line == f"error: {clean_dir / 'a.png'}: --json names an image file, which the JSON would replace; give a .json file name"
    (tmp_path / "notes.txt").write_text("mine")
    line = _refused(_evaluate(clean_dir, real, fake, "--json", str(tmp_path / "notes.txt" / "scores.json")), capsys)
    assert line == f"error: {tmp_path / 'notes.txt' / 'scores.json'}: --json goes through {tmp_path / 'notes.txt'}, which is a file, not a folder"
    # a missing parent folder is created
    assert main(_evaluate(clean_dir, real, fake, "--json", str(tmp_path / "new" / "deep" / "scores.json"))) == 0
    assert (tmp_path / "new" / "deep" / "scores.json").is_file()
