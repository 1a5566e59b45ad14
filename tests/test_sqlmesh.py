"""The same dbt project loaded by SQLMesh's native dbt loader gives the same phases as dbt."""

from __future__ import annotations

import shutil
import subprocess

import duckdb
import yaml

from conftest import BIN, END, REPO, warehouse_env
from phasegate.profiles import WarehouseTarget
from phasegate.warehouse import DuckDBWarehouse

SQLMESH_CONFIG = """
from pathlib import Path

from sqlmesh.core.config import ModelDefaultsConfig
from sqlmesh.dbt.loader import sqlmesh_config

config = sqlmesh_config(
    Path(__file__).parent,
    dbt_target_name="duckdb",
    model_defaults=ModelDefaultsConfig(dialect="duckdb", start="2026-01-01"),
)
"""


def _project_copy(dest, as_of):
    dest.mkdir()
    for name in ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    (dest / "tests" / "dbt").mkdir(parents=True)
    project = yaml.safe_load((dest / "dbt_project.yml").read_text())
    project["vars"]["phasegate"]["phasegate__as_of"] = as_of
    (dest / "dbt_project.yml").write_text(yaml.safe_dump(project, sort_keys=False))


def _load(env, generated):
    wh = DuckDBWarehouse(WarehouseTarget("duckdb", "duckdb", {"path": env["PHASEGATE_DUCKDB_PATH"]}))
    for table in ("customers", "identities", "events", "consents", "suppressions"):
        wh.load_parquet("phasegate_raw", table, generated / f"{table}.parquet")
    wh.close()


def test_sqlmesh_plan_matches_dbt_build(tmp_path, generated):
    results = {}
    for tool in ("dbt", "sqlmesh"):
        work = tmp_path / tool
        _project_copy(work, END.isoformat())
        env = warehouse_env("duckdb", work)
        _load(env, generated)
        if tool == "dbt":
            cmd = [str(BIN / "dbt"), "build", "--project-dir", str(work), "--profiles-dir", str(work)]
        else:
            (work / "config.py").write_text(SQLMESH_CONFIG)
            cmd = [str(BIN / "sqlmesh"), "--paths", str(work), "plan", "--auto-apply", "--no-prompts"]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        con = duckdb.connect(env["PHASEGATE_DUCKDB_PATH"], read_only=True)
        results[tool] = {
            "membership": sorted(
                con.execute(
                    "select journey, customer_id, phase, entered_on from main.phasegate__phase_membership"
                ).fetchall()
            ),
            # Holdout buckets (salted md5) and the resolved suppression list agree too.
            "governance": sorted(
                con.execute(
                    "select h.journey, h.customer_id, h.holdout_group, s.is_deletion_requested "
                    "from main.phasegate__holdout_assignments as h "
                    "left join main.phasegate__suppressed_customers as s on s.customer_id = h.customer_id"
                ).fetchall()
            ),
            "signals": sorted(
                con.execute(
                    "select customer_id, orders_lifetime, days_since_last_order, days_since_last_seen, "
                    "consent_email from main.phasegate__customer_signals"
                ).fetchall()
            ),
        }
        con.close()
    assert len(results["dbt"]["membership"]) == 1500
    assert results["sqlmesh"]["membership"] == results["dbt"]["membership"]
    assert results["sqlmesh"]["signals"] == results["dbt"]["signals"]
    assert results["sqlmesh"]["governance"] == results["dbt"]["governance"]
    assert any(r[3] is not None for r in results["dbt"]["governance"])
