"""Runs dbt as a subprocess (its output goes to our stderr) and reads its run results."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from phasegate.errors import BuildError, ConfigError
from phasegate.profiles import profiles_dir

log = logging.getLogger(__name__)

# Read by the as_of_date macro (through as_of_setting) when the phasegate__as_of var is unset.
AS_OF_ENV = "PHASEGATE_AS_OF"
AS_OF_MACRO = "macro.phasegate.as_of_setting"
AS_OF_READER = f"env_var('{AS_OF_ENV}'"

# DuckDB's allocator (jemalloc) hands freed memory back to the kernel about two seconds after a
# query frees it, so the next model of a run faults in fresh pages (a 1M-customer daily build:
# 5.2-5.7 M page faults, and 20-24 s of its 90-110 CPU-s in the kernel). With muzzy_decay_ms:-1 the
# freed pages stay lazily freed (MADV_FREE) instead: the next query reuses them without a fault,
# and the kernel still takes them back whenever it needs memory. The jemalloc inside the DuckDB
# library that dbt-duckdb loads reads this variable; a value already in the environment is kept.
# BENCHMARKS.md has the measurements.
DUCKDB_ALLOCATOR_ENV = {"DUCKDB_JE_MALLOC_CONF": "muzzy_decay_ms:-1"}


def target_dir(project_dir: Path) -> Path:
    """Where dbt writes artifacts; DBT_TARGET_PATH moves it, as it does for dbt itself."""
    configured = Path(os.environ.get("DBT_TARGET_PATH", "target"))
    return configured if configured.is_absolute() else project_dir / configured


def reads_as_of_from_env(project_dir: Path) -> bool:
    """Whether the project, or a package installed in it, has a macro reading PHASEGATE_AS_OF
    (a phasegate package older than this CLI has none, and gets the date as a var)."""
    roots = [project_dir, *sorted((project_dir / "dbt_packages").glob("*"))]
    return any(
        AS_OF_READER in path.read_text(errors="replace")
        for root in roots
        for path in (root / "macros").rglob("*.sql")
    )


def _manifest_has_as_of_macro(project_dir: Path) -> bool:
    try:
        manifest = json.loads((target_dir(project_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return AS_OF_MACRO in manifest.get("macros", {})


def _dbt_executable() -> str:
    sibling = Path(sys.executable).with_name("dbt")
    if sibling.exists():
        return str(sibling)
    found = shutil.which("dbt")
    if not found:
        raise ConfigError("dbt is not installed in this environment; pip install phasegate")
    return found


@dataclass
class DbtInvocation:
    command: list[str]
    returncode: int
    run_results: dict | None

    def failures(self) -> list[dict]:
        bad = []
        for r in (self.run_results or {}).get("results", []):
            if r.get("status") not in ("success", "pass", "skipped", "warn", "no-op"):
                bad.append(r)
        return bad


def run_dbt(
    args: list[str],
    project_dir: Path,
    target: str | None = None,
    vars: dict | None = None,
    check: bool = True,
    as_of: date | None = None,
) -> DbtInvocation:
    """Run one dbt command. `as_of` travels in PHASEGATE_AS_OF rather than in --vars where the
    project's phasegate package reads it: dbt re-parses the whole project whenever --vars
    change (4.6 s of a 1M-customer daily run), and the models read the date only when they
    execute."""
    as_of_in_env = as_of is not None and reads_as_of_from_env(project_dir)
    if as_of is not None and not as_of_in_env:
        vars = {**(vars or {}), "phasegate__as_of": as_of.isoformat()}
    cmd = [_dbt_executable(), *args, "--project-dir", str(project_dir)]
    cmd += ["--profiles-dir", str(profiles_dir(project_dir))]
    if target:
        cmd += ["--target", target]
    if vars:
        cmd += ["--vars", yaml.safe_dump(vars, default_flow_style=True).strip()]
    log.info("running: %s", " ".join(cmd[1:]))
    env = {**DUCKDB_ALLOCATOR_ENV, **os.environ}
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # Always set: an evaluation date left in the caller's environment must not leak into a run
    # that asked for today.
    env[AS_OF_ENV] = as_of.isoformat() if as_of_in_env else ""
    results_path = target_dir(project_dir) / "run_results.json"
    # A failed invocation may write no results; a stale file must not vouch for it.
    results_path.unlink(missing_ok=True)
    proc = subprocess.run(cmd, cwd=project_dir, stdout=sys.stderr, stderr=sys.stderr, env=env)
    results = json.loads(results_path.read_text()) if results_path.exists() else None
    inv = DbtInvocation(cmd, proc.returncode, results)
    if check and proc.returncode != 0:
        failed = ", ".join(
            f"{r.get('unique_id')} ({r.get('status')}): {(r.get('message') or '').strip()[:200]}"
            for r in inv.failures()[:5]
        )
        raise BuildError(
            f"dbt {args[0]} failed (exit {proc.returncode})"
            + (f": {failed}" if failed else "; see the dbt output above")
        )
    # The manifest this run wrote tells whether phasegate's own macro read the date.
    if as_of_in_env and not _manifest_has_as_of_macro(project_dir):
        raise BuildError(
            f"dbt {args[0]} in {project_dir} did not load phasegate's as_of_setting macro, which "
            f"reads {AS_OF_ENV}, so it may have evaluated today instead of {as_of}; install a "
            "phasegate dbt package matching this CLI (dbt deps)"
        )
    return inv
