"""tools/dev_runs_report.py on a scratch git repository with experiment refs of both metrics formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "dev_runs_report.py"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, dict]) -> str:
    for path, data in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(json.dumps(data))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "run")
    return _git(repo, "rev-parse", "HEAD")


def _model(akld: float, leak: bool = True) -> dict:
    m = {"akld": akld, "kld": 0.1, "fake_std": 10.0, "real_std": 12.0}
    return {**m, "leak": 0.25, "real_leak": 0.05} if leak else m


def _finetune(gain: float) -> dict:
    return {"ridnet": {"gain_psnr": {"test": gain}}}


@pytest.fixture
def tool(tmp_path, monkeypatch, load_tool):
    """The tool, run in a scratch repository holding dev-sidd-small (old formats) and dev-sidd-all (new)."""
    _git(tmp_path, "init", "-q")
    base = _commit(tmp_path, {"reports/metrics/noise_models.json": {"models": {}}})
    old = _commit(tmp_path, {
        "reports/metrics/noise_models.json": {"images": 6, "samples": 10, "models": {"pngan": _model(0.6, leak=False)}},
        "reports/metrics/pgap.json": {"models": {"real": {"psnr": 28.0}, "pngan": {"pgap": 6.5}}},
        "reports/metrics/finetune/ratio_0.json": {"denoisers": _finetune(0.3)},
        "reports/metrics/finetune/ratio_0.5.json": {"denoisers": _finetune(-0.1)},
    })
    _git(tmp_path, "reset", "-q", "--hard", base)
    new = _commit(tmp_path, {
        "reports/metrics/noise_models.json": {"images": 9, "samples": 5, "models": {
            "pngan": _model(0.7), "pngan_aware": _model(0.4), "pngan_aware@reference": _model(0.5), "awgn@reference": _model(1.5)}},
        "reports/metrics/pgap.json": {"models": {"real": {"psnr": 30.0}, "pngan": {"pgap": 2.0}, "pngan_aware": {"pgap": 1.0}}},
        "reports/metrics/finetune/ratio_0.json": {"fake_ratio": 0, "steps": 100, "runs": {"real": _finetune(0.2)}},
        "reports/metrics/finetune/ratio_0.5.json": {"fake_ratio": 0.5, "steps": 100, "runs": {
            "pngan": _finetune(0.1), "pngan_aware": _finetune(0.4)}},
    })
    _git(tmp_path, "update-ref", "refs/exps/ab/cd/dev-sidd-small", old)
    _git(tmp_path, "update-ref", "refs/exps/ab/cd/dev-sidd-all", new)
    monkeypatch.chdir(tmp_path)
    return load_tool("dev_runs_report")


def _row(text: str, start: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {start} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_both_formats_render(tool):
    text = tool.report(tool.columns({}))
    assert _row(text, "noise model") == ["SIDD_small: AKLD ↓ / std (real) / leak (real)", "SIDD (all dev pairs): AKLD ↓ / std (real) / leak (real)"]
    assert _row(text, tool.MODELS["pngan"]) == ["0.600 / 10.0 (12.0) / not run", "0.700 / 10.0 (12.0) / 0.25 (0.05)"]
    assert _row(text, tool.MODELS["pngan_aware@reference"]) == ["not run", "0.500 / 10.0 (12.0) / 0.25 (0.05)"]
    assert _row(text, "draws per block and model") == ["10", "5"]
    old_pgap, new_pgap = _row(text, "PGap (DnCNN)")
    assert "noise-aware not run, PNGAN +6.50" in old_pgap and "noise-aware +1.00, PNGAN +2.00" in new_pgap
    old_ft, new_ft = _row(text, "fine-tuning gain (dB)")
    assert old_ft == "ratio 0, real pairs only: ridnet +0.30; ratio 0.5, PNGAN: ridnet -0.10"
    assert new_ft == "ratio 0, real pairs only: ridnet +0.20; ratio 0.5, PNGAN: ridnet +0.10; ratio 0.5, noise-aware: ridnet +0.40"
    assert [line for line in text.splitlines() if line.startswith("| ")][0].startswith("| noise model |")


def test_print_only_writes_nothing(tool, tmp_path):
    done = subprocess.run([sys.executable, str(TOOL), "--out", "-"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "SIDD (all dev pairs)" in done.stdout and not (tmp_path / "reports" / "dev_runs.md").exists()


def test_a_family_not_run_here_keeps_its_last_column_and_a_rerun_replaces_it(tool, tmp_path):
    stale = {"models": {"pngan": "9.999 / 1.0 (1.0) / 0.00 (0.00)"}, **{row: "old" for row in tool.SUMMARY_ROWS}}
    cols = tool.columns({"PolyU": stale, "SIDD_small": stale})
    assert list(cols) == ["SIDD_small", "SIDD (all dev pairs)", "PolyU"]  # the families' own order
    assert cols["PolyU"] == stale and cols["SIDD_small"]["models"]["pngan"] == "0.600 / 10.0 (12.0) / not run"
    text = tool.report(cols)
    assert _row(text, tool.MODELS["pngan"])[2] == "9.999 / 1.0 (1.0) / 0.00 (0.00)"
    assert _row(text, tool.MODELS["pngan_aware"])[2] == "not run"  # a model the kept column lacks
    out = tmp_path / "report.md"
    for _ in range(2):  # the second run reads the columns the first one kept
        done = subprocess.run([sys.executable, str(TOOL), "--out", str(out), "--columns", str(tmp_path / "cols.json")],
                              cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "cols.json").read_text()) == tool.columns({}) and out.read_text() == tool.report(tool.columns({}))
