"""Shared fixtures: real dbt runs against real DuckDB files and a real Postgres."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_DEFAULTS = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres", "PGDATABASE": "test"}


END = date(2026, 11, 20)


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Path:
    """A small generated dataset (with its dirty-data defaults) shared by the session."""
    from phasegate.generator import GeneratorConfig, generate

    out = tmp_path_factory.mktemp("generated")
    generate(GeneratorConfig(customers=1500, days=240, seed=7, out=out, end_date=END))
    return out


def postgres_required() -> bool:
    return os.environ.get("PHASEGATE_REQUIRE_POSTGRES") == "1" or os.environ.get("CI") == "true"


def postgres_error() -> str | None:
    import psycopg2

    env = {k: os.environ.get(k, v) for k, v in PG_DEFAULTS.items()}
    try:
        psycopg2.connect(
            host=env["PGHOST"],
            port=int(env["PGPORT"]),
            user=env["PGUSER"],
            dbname=env["PGDATABASE"],
            connect_timeout=5,
        ).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc)
    return None


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_kind(request) -> str:
    """Runs a test on DuckDB and on Postgres. Postgres runs whenever it is reachable; where
    it is required (CI) an unreachable server fails the test instead of skipping it."""
    if request.param == "postgres":
        problem = postgres_error()
        if problem:
            if postgres_required():
                pytest.fail(f"Postgres is required here but unreachable: {problem}")
            pytest.skip(f"Postgres not reachable: {problem}")
    return request.param


def warehouse_env(kind: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["PHASEGATE_TARGET"] = kind
    if kind == "duckdb":
        env["PHASEGATE_DUCKDB_PATH"] = str(tmp_path / "warehouse.duckdb")
    else:
        for k, v in PG_DEFAULTS.items():
            env.setdefault(k, v)
        env["PHASEGATE_PG_SCHEMA"] = f"phasegate_test_{uuid.uuid4().hex[:10]}"
    return env


def drop_pg_schemas(env: dict[str, str], *schemas: str) -> None:
    import psycopg2

    conn = psycopg2.connect(
        host=env["PGHOST"], port=int(env["PGPORT"]), user=env["PGUSER"], dbname=env["PGDATABASE"]
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        for s in schemas:
            cur.execute(f'drop schema if exists "{s}" cascade')
    conn.close()


@dataclass
class DbtProject:
    """A dbt project directory driven through the real dbt CLI."""

    path: Path
    env: dict[str, str]
    vars: dict = field(default_factory=dict)

    def dbt(self, *args: str, vars: dict | None = None, expect_ok: bool = True):
        merged = {**self.vars, **(vars or {})}
        cmd = [
            str(BIN / "dbt"),
            *args,
            "--project-dir",
            str(self.path),
            "--profiles-dir",
            str(self.path),
        ]
        if merged:
            cmd += ["--vars", yaml.safe_dump(merged, default_flow_style=True).strip()]
        proc = subprocess.run(cmd, cwd=self.path, env=self.env, capture_output=True, text=True)
        if expect_ok and proc.returncode != 0:
            raise AssertionError(
                f"dbt {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
            )
        return proc


def make_integration_project(tmp_path: Path, kind: str) -> DbtProject:
    """A copy of integration_tests/ that installs this repo as a package by absolute path."""
    dest = tmp_path / "integration_tests"
    shutil.copytree(
        REPO / "integration_tests",
        dest,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "package-lock.yml"),
    )
    (dest / "packages.yml").write_text(yaml.safe_dump({"packages": [{"local": str(REPO)}]}))
    env = warehouse_env(kind, tmp_path)
    raw = f"it_raw_{uuid.uuid4().hex[:8]}"
    env["PHASEGATE_IT_RAW_SCHEMA"] = raw
    project = DbtProject(dest, env, vars={"phasegate__source_schema": raw})
    project.dbt("deps")
    return project


@pytest.fixture
def integration_project(tmp_path, warehouse_kind):
    project = make_integration_project(tmp_path, warehouse_kind)
    yield project
    if warehouse_kind == "postgres":
        drop_pg_schemas(
            project.env, project.env["PHASEGATE_PG_SCHEMA"], project.env["PHASEGATE_IT_RAW_SCHEMA"]
        )


def _run_sql(project: DbtProject, sql: str, *, write: bool) -> list[tuple]:
    """Run one statement against the project's warehouse (unqualified names resolve to its
    schema); a write is committed, a read returns its rows."""
    if project.env["PHASEGATE_TARGET"] == "duckdb":
        import duckdb

        con = duckdb.connect(project.env["PHASEGATE_DUCKDB_PATH"], read_only=not write)
        try:
            cur = con.execute(sql)
            return [] if write else cur.fetchall()
        finally:
            con.close()
    import psycopg2

    e = project.env
    conn = psycopg2.connect(host=e["PGHOST"], port=int(e["PGPORT"]), user=e["PGUSER"], dbname=e["PGDATABASE"])
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f'set search_path to "{e["PHASEGATE_PG_SCHEMA"]}"')
            cur.execute(sql)
            return [] if write else cur.fetchall()
    finally:
        conn.close()


def query(project: DbtProject, sql: str) -> list[tuple]:
    """Rows of a query against the project's warehouse."""
    return _run_sql(project, sql, write=False)


def execute(project: DbtProject, sql: str) -> None:
    """Run a writing statement against the project's warehouse (to inject a fault)."""
    _run_sql(project, sql, write=True)


# Bookkeeping columns (run numbers, what a rewritten row counted towards before) differ
# between an incremental history and a rebuild by design; everything else must not.
BOOKKEEPING = {
    "events_batch",
    "validated_batch",
    "previous_customer_id",
    "previous_activity_date",
    "summarized_as_of",
    "consents_as_of",
    "inputs_fingerprint",
    "rebuilt_batch",
    "resolved_map_batch",
    "resolved_map_rows",
    "edges_read",
    "stitch_settings",
    "customer_changed_batch",
    "map_read",
    "guard_settings",
}


def columns_of(project, relation: str) -> list[str]:
    return [
        c
        for (c,) in query(
            project,
            "select column_name from information_schema.columns "
            f"where table_name = '{relation}' and table_schema = current_schema() "
            "order by ordinal_position",
        )
    ]


def column_type(project, relation: str, column: str) -> str:
    [(data_type,)] = query(
        project,
        "select data_type from information_schema.columns "
        f"where table_name = '{relation}' and column_name = '{column}' and table_schema = current_schema()",
    )
    return data_type.lower()


def data_rows(project, relation: str, by_name: bool = False) -> list[tuple]:
    """The relation's rows without bookkeeping columns, sorted. `by_name` orders the columns by
    name, for a table whose columns an upgrade added at the end."""
    cols = [c for c in columns_of(project, relation) if c not in BOOKKEEPING]
    if by_name:
        cols.sort()
    return sorted(query(project, f"select {', '.join(cols)} from {relation}"), key=repr)
