"""tools/transfer_report.py: the table it writes from noise-model summaries."""

from __future__ import annotations

from pathlib import Path


def _summary(aware_std: float) -> dict:
    row = lambda akld, std: {"akld": akld, "kld": 0.1, "fake_std": std, "real_std": 4.0}  # noqa: E731
    return {"images": 7, "models": {
        "pngan_aware@reference": {**row(0.5, aware_std), "params": {"images_with_a_reference_of_another_setting": 2}},
        "pngan_aware": row(3.0, 20.0),
        "heteroscedastic@reference": row(0.6, 8.0),
        "awgn@reference": row(0.7, 8.0),
        "awgn_fitted": row(0.4, 5.0),
    }}


def test_the_table_gives_akld_std_and_the_ratio_to_the_fitted_awgn_per_family(load_tool):
    tool = load_tool("transfer_report")
    text = tool.report({"PolyU": _summary(10.0), "Nam": _summary(2.5)}, Path("/x/sidd.pt"), 5)
    lines = text.splitlines()
    aware = next(line for line in lines if line.startswith("| noise-aware PNGAN (SIDD-trained), reference level"))
    assert aware.split(" | ")[1:] == ["0.500 / 10.0 (4.0) / 2.00", "0.500 / 2.5 (4.0) / 0.50 |"]
    assert next(line for line in lines if line.startswith("| AWGN, σ fitted")).endswith("0.400 / 5.0 (4.0) / 1.00 | 0.400 / 5.0 (4.0) / 1.00 |")
    assert "| test blocks | 7 | 7 |" in lines and "| references of another camera setting | 2 | 2 |" in lines
    assert "noised 5 times" in text and "never from the scored" in text
    # every row the tool asks the stage for is a model the stage scores
    assert set(tool.MODELS) < set(tool.ROWS)
