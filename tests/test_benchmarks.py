"""The benchmark harness: reports, summary table, timing helper, command line."""

from __future__ import annotations

import json

import pytest

from benchmarks import __main__ as cli
from benchmarks.common import peak_memory, timeit, write_report


def test_write_report_json_and_summary_rows(tmp_path):
    write_report("alpha", {"summary": "a = 1 | b", "ok": True}, tmp_path)
    write_report("beta", {"summary": "slow", "ok": False}, tmp_path)
    path = write_report("alpha", {"summary": "a = 2", "value": 3.5}, tmp_path)
    report = json.loads(path.read_text())
    assert report["name"] == "alpha" and report["result"] == {"summary": "a = 2", "value": 3.5}
    assert {"torch", "torch_threads", "load_avg_1m", "omp_wait_policy"} <= set(report["where"])
    rows = [line for line in (tmp_path / "SUMMARY.md").read_text().splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[:3] for r in rows[1:]] == [["| alpha", "a = 2", "-"], ["| beta", "slow", "NO"]]


def test_summary_escapes_pipes_and_falls_back_to_scalars(tmp_path):
    write_report("gamma", {"summary": "x | y"}, tmp_path)
    write_report("delta", {"rate": 2.5, "ok": True, "name": "n", "nested": {"a": 1}}, tmp_path)
    text = (tmp_path / "SUMMARY.md").read_text()
    assert "| gamma | x \\| y | - |" in text
    assert "| delta | rate=2.5, name=n | yes |" in text


def test_timeit_calls_warmup_then_repeats():
    calls = []
    seconds = timeit(lambda: calls.append(1), repeat=4, warmup=2)
    assert len(calls) == 6 and seconds >= 0.0


def test_peak_memory_is_bytes():
    assert peak_memory() > 10 * 2**20  # a Python process with torch loaded holds more than 10 MiB


def test_cli_lists_and_rejects_names(capsys):
    assert "akld" in cli.available()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--only", "no_such_bench"])
    assert exit_info.value.code == 2
    assert "unknown benchmark(s) no_such_bench; available: akld" in capsys.readouterr().err
