"""tools/level_sources.py: the table it writes from per-family scores."""

from __future__ import annotations

from pngan.train.config import LEVEL_SOURCES


def _scores(akld: float, std: float) -> dict:
    return {"val": {"akld": akld + 0.1, "fake_std": std, "real_std": 4.0, "images": 3},
            "test": {"akld": akld, "fake_std": std, "real_std": 4.0, "images": 6}}


def test_the_table_gives_every_source_on_both_splits_and_marks_what_a_family_cannot_take(load_tool):
    tool = load_tool("level_sources")
    real = {"auto": {"chooses": "iso_law"}, "camera": _scores(0.8, 5.0), "iso_law": _scores(0.5, 4.2), "all": _scores(0.6, 4.6)}
    simulated = {"auto": {"chooses": "camera"}, "camera": _scores(0.1, 10.0), "all": _scores(0.3, 12.0)}
    lines = tool.report({"PolyU": real, "simulated": simulated}, 5).splitlines()
    assert "| iso_law | val | 0.600 / 4.2 (4.0) | — |" in lines
    assert "| camera | test | 0.800 / 5.0 (4.0) | 0.100 / 10.0 (4.0) |" in lines
    assert "| auto chooses | | iso_law | camera |" in lines
    # every source training takes, but auto, which resolves to one of them
    assert set(tool.SOURCES) == set(LEVEL_SOURCES) - {"auto"}
