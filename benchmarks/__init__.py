"""Speed benchmarks of the kit: `python -m benchmarks [--quick] [--only NAME]`.

Each `bench_<name>.py` module defines `run(quick: bool) -> dict` (JSON-serialisable, with a one-line
`summary` and, when it checks correctness, an `ok` flag); reports go to reports/bench/.
"""
