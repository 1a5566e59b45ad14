"""benchmarks/run.py's per-step measurements: the numbers BENCHMARKS.md quotes come from here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run_steps", REPO / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A step whose work happens in a grandchild, as `phasegate build` leaves dbt's work to a dbt
# subprocess: the CPU it burns must be counted for the step.
BURN_IN_GRANDCHILD = (
    "import subprocess, sys; "
    "subprocess.run([sys.executable, '-c', "
    "'import time\\nend = time.process_time() + 0.6\\nwhile time.process_time() < end: pass'], "
    "check=True)"
)


def test_a_step_counts_the_cpu_of_its_whole_process_tree(bench, tmp_path):
    result = bench.step(
        "burn", [sys.executable, "-c", BURN_IN_GRANDCHILD], {"DBT_TARGET_PATH": str(tmp_path)}
    )
    assert result["step"] == "burn"
    assert result["cpu_seconds"] >= 0.6
    # The grandchild ran alone on one core: its CPU cannot exceed the step's wall time by much.
    assert result["cpu_seconds"] <= result["seconds"] + 0.2
    assert result["peak_rss_mb"] > 0
    assert result["slowest_nodes"] == []


def test_a_failed_step_stops_the_benchmark_with_its_error(bench, tmp_path):
    cmd = [sys.executable, "-c", "import sys; sys.stderr.write('the reason'); sys.exit(3)"]
    with pytest.raises(SystemExit, match="broken failed:\n.*the reason"):
        bench.step("broken", cmd, {"DBT_TARGET_PATH": str(tmp_path)})
