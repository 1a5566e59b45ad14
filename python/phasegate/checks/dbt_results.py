"""The gate on the last dbt invocation, read from its run_results.json."""

from __future__ import annotations

import json
from pathlib import Path

from phasegate.checks.results import CheckResult
from phasegate.dbt_runner import target_dir


def check_dbt_build(project_dir: Path) -> CheckResult:
    """The last dbt invocation must be a build whose models and tests all passed."""
    path = target_dir(project_dir) / "run_results.json"
    name = "dbt_build_passed"
    if not path.exists():
        return CheckResult(
            name,
            False,
            "no run_results.json",
            "a passing dbt build",
            f"no dbt results at {path}; run `phasegate build` first",
        )
    results = json.loads(path.read_text())
    command = results.get("args", {}).get("which")
    nodes = results.get("results", [])
    failed = [r for r in nodes if r.get("status") not in ("success", "pass", "warn", "skipped", "no-op")]
    tests = [r for r in nodes if r.get("unique_id", "").startswith("test.")]
    if command != "build" or not tests:
        return CheckResult(
            name,
            False,
            f"last dbt command: {command} ({len(tests)} tests)",
            "dbt build with tests",
            "the last dbt invocation did not run the data tests; run `phasegate build` so the "
            "data being activated has been tested",
        )
    if failed:
        samples = [
            {
                "node": r.get("unique_id"),
                "status": r.get("status"),
                "failures": r.get("failures"),
                "message": (r.get("message") or "")[:300],
            }
            for r in failed[:5]
        ]
        return CheckResult(
            name,
            False,
            f"{len(failed)} failed",
            "0 failed",
            f"{len(failed)} dbt node(s) failed in the last build",
            samples,
        )
    return CheckResult(
        name,
        True,
        f"{len(nodes)} nodes, {len(tests)} tests passed",
        "0 failed",
        "last dbt build passed",
    )
