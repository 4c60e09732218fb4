"""docs/METHOD.md: its numbered sections, and every citation of it in the repository resolves.

Citations are collected by pattern, never from a list: any "METHOD.md" or "METHOD" followed by a
section mark (the section sign or the word "section") and a number N or N.M, with ranges
("1.3-1.5"), item or step lists ("4, items 1, 2 and 4" -> 4.1, 4.2, 4.4), further section signs
("4 and 6"), a possessive ("METHOD.md's") and a line break inside a comment between the file name
and the mark. N must be a `## N.` heading of docs/METHOD.md, N.M a `### N.M` heading.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "METHOD.md"

# Where citations may live (relative to the repository root): folders scanned recursively, files.
SCAN_DIRS = ("pngan", "notebooks", "tests", "benchmarks", "tools", "configs", "docs")
SCAN_FILES = ("README.md", "params.yaml", "dvc.yaml")
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
MAX_BYTES = 5_000_000

SECTION_TITLES = {  # the numbering the code cites: section N must stay about this
    1: "method",
    2: "metrics",
    3: "paper",
    4: "classical noise models",
    5: "data",
    6: "hazards",
    7: "layouts",
    8: "conditioned noise generators",
}

_NUM = r"\d+(?:\.\d+)?"
_SEP = r"[ \t]*(?:,|and|or|&)[ \t]*"
_CITATION = re.compile(
    r"\bMETHOD(?:\.md)?(?:'s)?"
    r"[ \t]*(?:\n[ \t]*(?:#+|//|\*|\"|')?[ \t]*)?"  # a line break inside a comment or string
    r"(?:§+[ \t]*|[Ss]ections?[ \t]+)"
    rf"(?P<first>{_NUM})"
    rf"(?:[ \t]*(?:-|–|—|to)[ \t]*§?[ \t]*(?P<last>{_NUM}))?"
    rf"(?:,[ \t]*(?:items?|steps?|points?)[ \t]+(?P<subs>\d+(?:{_SEP}\d+)*))?"
    rf"(?P<more>(?:{_SEP}§[ \t]*{_NUM}(?:[ \t]*(?:-|–)[ \t]*{_NUM})?)*)"
)
_MORE = re.compile(rf"§[ \t]*(?P<first>{_NUM})(?:[ \t]*(?:-|–)[ \t]*(?P<last>{_NUM}))?")
_INTERNAL = re.compile(rf"§[ \t]*(?P<first>{_NUM})(?:[ \t]*(?:-|–)[ \t]*§?[ \t]*(?P<last>{_NUM}))?")


@dataclass(frozen=True)
class Citation:
    where: str  # file:line (notebooks: file[cell N]:line)
    text: str  # the matched text
    target: str  # "N" or "N.M"


def _expand(first: str, last: str | None) -> list[str]:
    """Targets of one number or range: 1.3-1.5 -> 1.3, 1.4, 1.5; 2-4 -> 2, 3, 4."""
    if last is None:
        return [first]
    a, b = first.split("."), last.split(".")
    if len(a) == len(b) == 1 and int(a[0]) <= int(b[0]):
        return [str(n) for n in range(int(a[0]), int(b[0]) + 1)]
    if len(a) == len(b) == 2 and a[0] == b[0] and int(a[1]) <= int(b[1]):
        return [f"{a[0]}.{n}" for n in range(int(a[1]), int(b[1]) + 1)]
    return [first, last]


def targets_of(match: re.Match) -> list[str]:
    targets = _expand(match["first"], match["last"])
    if match["subs"]:
        major = match["first"].split(".")[0]
        targets = [f"{major}.{n}" for n in re.findall(r"\d+", match["subs"])]
    for more in _MORE.finditer(match["more"] or ""):
        targets += _expand(more["first"], more["last"])
    return targets


def citations_in(text: str, where: str) -> list[Citation]:
    """Every citation in `text`; `where` is the file's name, the line number is appended."""
    out = []
    for match in _CITATION.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        snippet = " ".join(match.group(0).split())
        out += [Citation(f"{where}:{line}", snippet, t) for t in targets_of(match)]
    return out


def _notebook_citations(path: Path, raw: str, name: str) -> list[Citation]:
    try:
        cells = json.loads(raw)["cells"]
    except (ValueError, KeyError, TypeError):
        return citations_in(raw, name)
    out = []
    for index, cell in enumerate(cells):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        out += citations_in(source, f"{name}[cell {index}]")
    return out


def scanned_files(root: Path) -> list[Path]:
    files = [root / f for f in SCAN_FILES if (root / f).is_file()]
    for folder in SCAN_DIRS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(root).parts):
                files.append(path)
    return files


def collect_citations(root: Path) -> list[Citation]:
    """Citations of METHOD.md in every text file under the scanned places of `root`."""
    out = []
    for path in scanned_files(root):
        if path.stat().st_size > MAX_BYTES:
            continue
        try:
            raw = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary data (images, .mat files)
        name = path.relative_to(root).as_posix()
        out += _notebook_citations(path, raw, name) if path.suffix == ".ipynb" else citations_in(raw, name)
    return out


def headings(doc_text: str) -> tuple[list[tuple[int, str]], list[tuple[int, int, str]]]:
    """(`## N. Title` as (N, title), `### N.M Title` as (N, M, title)), in document order."""
    sections = [(int(m[1]), m[2].strip()) for m in re.finditer(r"^## (\d+)\. (.+)$", doc_text, re.M)]
    subsections = [(int(m[1]), int(m[2]), m[3].strip()) for m in re.finditer(r"^### (\d+)\.(\d+) (.+)$", doc_text, re.M)]
    return sections, subsections


def anchors(doc_text: str) -> set[str]:
    sections, subsections = headings(doc_text)
    return {str(n) for n, _ in sections} | {f"{n}.{m}" for n, m, _ in subsections}


def dangling(root: Path) -> tuple[list[Citation], list[Citation]]:
    """(all citations under `root`, those whose target is no heading of root/docs/METHOD.md)."""
    found = collect_citations(root)
    known = anchors((root / "docs" / "METHOD.md").read_text(encoding="utf-8"))
    return found, [c for c in found if c.target not in known]


def section_text(doc_text: str, number: str) -> str:
    """The text of section N (up to the next `## `) or subsection N.M (up to the next heading)."""
    if "." in number:
        pattern = rf"^### {re.escape(number)} .*?(?=^##)|^### {re.escape(number)} .*\Z"
    else:
        pattern = rf"^## {re.escape(number)}\. .*?(?=^## )|^## {re.escape(number)}\. .*\Z"
    match = re.search(pattern, doc_text, re.M | re.S)
    assert match, f"docs/METHOD.md has no section {number}"
    return match.group(0)


@pytest.fixture(scope="module")
def doc_text() -> str:
    assert DOC.is_file(), f"{DOC} is missing"
    return DOC.read_text(encoding="utf-8")


# ---------------------------------------------------------------- the document


def test_sections_one_to_eight_in_order(doc_text):
    sections, _ = headings(doc_text)
    assert [n for n, _ in sections] == list(range(1, 9)), f"expected `## 1.` ... `## 8.` in order, got {sections}"
    for number, title in sections:
        assert SECTION_TITLES[number] in title.lower(), f"section {number} is '{title}', expected it about '{SECTION_TITLES[number]}'"


def test_subsections_sit_in_their_section_and_count_up(doc_text):
    sections, subsections = headings(doc_text)
    order = [(int(m[1]), int(m[2] or 0)) for m in re.finditer(r"^#{2,3} (\d+)\.(\d+)?", doc_text, re.M)]
    current, expected = 0, 1
    for major, minor in order:
        if minor == 0:
            current, expected = major, 1
            continue
        assert major == current, f"subsection {major}.{minor} is inside section {current}"
        assert minor == expected, f"subsection {major}.{minor} should be {major}.{expected}"
        expected += 1
    assert subsections, "no `### N.M` subsections"


def test_internal_references_resolve(doc_text):
    known = anchors(doc_text)
    refs = [(m.group(0), t) for m in _INTERNAL.finditer(doc_text) for t in _expand(m["first"], m["last"])]
    assert refs
    bad = sorted({f"{text} -> {t}" for text, t in refs if t not in known})
    assert not bad, f"docs/METHOD.md refers to sections it does not have: {bad}"


@pytest.mark.parametrize(
    "number, facts",
    [
        ("1.1", ["50/255", "input_noise_fixed", "setting"]),
        ("1.2", ["SMNet", "SIMNet", "1,725,433", "802,207"]),
        ("1.3", ["L_1", "frozen", "denoiser_real", "mean_shift"]),
        ("1.4", ["6e-3", "conv5_4", "perceptual_norm"]),
        ("1.5", ["D_Ra", "8e-4", "ra_mean"]),
        ("1.6", ["d_steps", "mean"]),
        ("1.7", ["371,329", "LReLU(0.2)", "net.0/2/3/5/7"]),
        ("1.8", ["128", "16", "100,000", "cosine"]),
        ("1.9", ["MIRNet", "MPRNet", "fake_ratio"]),
        ("2", ["AKLD", "KLD", "PGap", "PSNR", "SSIM", "oracle"]),
        ("2.1", ["1.4", "1e-10", "0.1, 10", "reflect"]),
        ("4", ["training split only"]),
        ("4.2", ["a_c x + b_c", "negative"]),
        ("4.3", ["2.18", "1.20", "camera_random", "camera_fitted"]),
        ("4.5", ["kind@camera"]),
        ("5", ["16.4 [9.1, 32.3]", "3.8 [2.8, 5.7]", "0.44 / 0.45", "0.68 / 0.62 / 0.62", "oracle", "PolyU", "Nam"]),
        ("6", ["Under-noising", "700", "std_fake_255", "d_logit_gap", "gradnorm_adv", "camera"]),
        ("7", ["1,499,371", "31,787,419", "15,741,025", "668,227", "module."]),
        ("8", ["NeCA-W", "NAFlow", "leak"]),
    ],
)
def test_cited_content_is_in_its_section(doc_text, number, facts):
    """What the code cites a section for is in that section (a few facts per section)."""
    text = section_text(doc_text, number)
    missing = [f for f in facts if f.lower() not in text.lower()]
    assert not missing, f"section {number} of docs/METHOD.md lacks {missing}"


def test_params_keys_named_in_the_document_exist(doc_text):
    """Every `section.key` the document names (e.g. a [guess]'s key) is in params.yaml."""
    yaml = pytest.importorskip("yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    sections = "|".join(map(re.escape, params))
    named = set(re.findall(rf"`((?:{sections})\.[A-Za-z_][\w.]*)", doc_text))
    assert len(named) >= 20, f"only {len(named)} params.yaml keys named in docs/METHOD.md"
    missing = []
    for key in sorted(named):
        node = params
        for part in key.split("."):
            if not (isinstance(node, dict) and part in node):
                missing.append(key)
                break
            node = node[part]
    assert not missing, f"docs/METHOD.md names keys that params.yaml does not have: {missing}"


# ---------------------------------------------------------------- citations in the repository


def test_every_citation_resolves():
    found, bad = dangling(ROOT)
    assert len(found) >= 30, f"only {len(found)} citations found: is the scanner broken?"
    listing = "\n".join(f"  {c.where}: '{c.text}' -> section {c.target}" for c in bad)
    assert not bad, f"citations of docs/METHOD.md without a matching heading:\n{listing}"


# ---------------------------------------------------------------- the checker itself

_NAME = "METHOD" + ".md"  # built here so this file's own text holds no citation


@pytest.mark.parametrize(
    "text, targets",
    [
        (f"see {_NAME} §2 for AKLD", ["2"]),
        (f"({_NAME} §1.7), keys", ["1.7"]),
        (f"{_NAME} section 5's table", ["5"]),
        (f"{_NAME}'s §5 table", ["5"]),
        (f"losses ({_NAME} section 1.3-1.6)", ["1.3", "1.4", "1.5", "1.6"]),
        (f"models ({_NAME} §4, items 1, 2 and 4)", ["4.1", "4.2", "4.4"]),
        (f"{_NAME} section 1, step 3", ["1.3"]),
        (f"{_NAME} §4 and §6", ["4", "6"]),
        (f"{_NAME} Sections 2-3", ["2", "3"]),
        ("weights of " + "METHOD" + " §1 marked [guess]", ["1"]),
        (f"# as printed in {_NAME}\n# section 6 says", ["6"]),
        (f"as {_NAME} says", []),
        ("DEMOSAIC_METHODS §3", []),
        (f"{_NAME}: clamp the fakes", []),
    ],
)
def test_citation_forms(text, targets):
    assert [c.target for c in citations_in(text, "x")] == targets


def test_a_dangling_citation_fails(tmp_path):
    """A repository copy with one citation of a section the document lacks is reported, by line."""
    (tmp_path / "docs").mkdir()
    shutil.copy(DOC, tmp_path / "docs" / "METHOD.md")
    (tmp_path / "pngan").mkdir()
    (tmp_path / "pngan" / "fine.py").write_text(f'"""Metrics ({_NAME} section 2)."""\n', encoding="utf-8")
    (tmp_path / "pngan" / "bad.py").write_text(f"x = 1\n# {_NAME} §9.4: no such section\n", encoding="utf-8")
    notebook = {"cells": [{"cell_type": "markdown", "source": ["intro\n", f"see {_NAME} §1.99\n"]}]}
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "n.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    found, bad = dangling(tmp_path)
    assert {c.target for c in found} == {"2", "9.4", "1.99"}
    assert sorted((c.where, c.target) for c in bad) == [
        ("notebooks/n.ipynb[cell 0]:2", "1.99"),
        ("pngan/bad.py:2", "9.4"),
    ]
