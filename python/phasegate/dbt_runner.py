"""Runs dbt as a subprocess (its output goes to our stderr) and reads its run results."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from phasegate.errors import BuildError, ConfigError
from phasegate.profiles import profiles_dir

log = logging.getLogger(__name__)


def target_dir(project_dir: Path) -> Path:
    """Where dbt writes artifacts; DBT_TARGET_PATH moves it, as it does for dbt itself."""
    configured = Path(os.environ.get("DBT_TARGET_PATH", "target"))
    return configured if configured.is_absolute() else project_dir / configured


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
) -> DbtInvocation:
    cmd = [_dbt_executable(), *args, "--project-dir", str(project_dir)]
    cmd += ["--profiles-dir", str(profiles_dir(project_dir))]
    if target:
        cmd += ["--target", target]
    if vars:
        cmd += ["--vars", yaml.safe_dump(vars, default_flow_style=True).strip()]
    log.info("running: %s", " ".join(cmd[1:]))
    env = dict(os.environ)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
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
    return inv
