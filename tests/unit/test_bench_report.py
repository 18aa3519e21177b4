"""`make bench` rewrites only its generated block of BENCHMARKS.md, with the machine and
the command behind every figure (the rendering is pure; the benchmarks themselves run in
`make bench`, not in tests)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
spec = importlib.util.spec_from_file_location("gridflex_bench", SCRIPT)
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench  # its dataclasses look their module up there
spec.loader.exec_module(bench)

MACHINE = {"cpu": "Test CPU, 2 cores", "date": "2026-11-25 12:00 UTC"}
RESULTS = {
    "gas": {"bid_5devices": 143_331, "withdraw": 60_000},
    "demo": {
        "devices": 50, "runs": 3,
        "story_s": {"min": 40.1, "median": 44.4, "max": 47.0},
        "wall_s": {"min": 43.0, "median": 47.9, "max": 50.0},
        "median_phases": [{"phase": "delivery", "seconds": 15.3}],
    },
    "explorer": {
        "requests": 100, "readings": 10_000, "database": "sqlite", "repeat": 30,
        "pages": {"overview": {"p50_ms": 5.4, "p95_ms": 9.0, "max_ms": 38.0}},
    },
}  # fmt: skip


def test_the_block_names_machine_commands_and_misses(tmp_path: Path) -> None:
    block = bench.render_block(MACHINE, RESULTS)
    assert block.startswith(bench.BLOCK_START) and block.endswith(bench.BLOCK_END)
    assert "| cpu | Test CPU, 2 cores |" in block
    assert "Command: `forge test --match-contract Gas`" in block
    assert "| bid_5devices | 143,331 | 150,000 | yes |" in block
    assert "| withdraw | 60,000 | 50,000 | **no** |" in block  # a missed target shows
    assert "`python scripts/bench.py demo --devices 50 --runs 3 --json`" in block
    assert "| 50 | 3 | 40.1 / 44.4 / 47.0 | 47.9 |" in block
    assert "`python scripts/bench.py explorer --json` (100 settled requests, 10,000" in block
    assert "| overview | 5.4 | 9.0 | 38.0 |" in block


def test_rewriting_keeps_the_hand_written_text(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nIntro.\n\n## Analysis\n\nKept.\n")
    bench.write_block(path, bench.render_block(MACHINE, RESULTS))
    first = path.read_text()
    assert first.startswith("# Benchmarks\n\n" + bench.BLOCK_START)
    assert "Intro.\n\n## Analysis\n\nKept.\n" in first
    newer = bench.render_block({**MACHINE, "cpu": "Other CPU"}, RESULTS)
    bench.write_block(path, newer)
    second = path.read_text()
    assert "Other CPU" in second and "Test CPU" not in second
    assert second.count(bench.BLOCK_START) == 1
    assert "Intro.\n\n## Analysis\n\nKept.\n" in second
