"""A thin connection to the warehouse dbt builds into: DuckDB (embedded) or Postgres.

Python jobs use it to load source files, read marts, and keep the
activation ledgers next to the phase tables, so that BI can read them too.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from phasegate.errors import ConfigError
from phasegate.profiles import WarehouseTarget, load_target

# pandas and pyarrow are imported where they are used: every CLI command imports this
# module, and the two were half of its 0.8 s start-up.
if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{_quote(schema)}.{_quote(table)}"


def _naive_utc(table: pa.Table) -> pa.Table:
    """Timestamps land as naive UTC so every warehouse reads them the same way."""
    import pyarrow as pa

    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            fields.append(pa.field(f.name, pa.timestamp("us")))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields))


class Warehouse:
    kind: str
    param = "?"

    def __init__(self, target: WarehouseTarget):
        self.target = target

    @property
    def schema(self) -> str:
        return self.target.schema

    # Subclasses implement these four.
    def _cursor(self):  # pragma: no cover - interface
        raise NotImplementedError

    def commit(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def rollback(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence | None = None) -> None:
        cur = self._cursor()
        cur.execute(self._sql(sql), params or ())

    def executemany(self, sql: str, rows: Sequence[Sequence]) -> None:
        if rows:
            self._cursor().executemany(self._sql(sql), rows)

    def query(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        cur = self._cursor()
        cur.execute(self._sql(sql), params or ())
        return cur.fetchall()

    def query_with_columns(self, sql: str, params: Sequence | None = None) -> tuple[list[str], list[tuple]]:
        cur = self._cursor()
        cur.execute(self._sql(sql), params or ())
        return [d[0] for d in cur.description], cur.fetchall()

    def query_df(self, sql: str, params: Sequence | None = None) -> pd.DataFrame:
        cur = self._cursor()
        cur.execute(self._sql(sql), params or ())
        cols = [d[0] for d in cur.description]
        import pandas as pd

        return pd.DataFrame(cur.fetchall(), columns=cols)

    def _sql(self, sql: str) -> str:
        return sql if self.param == "?" else sql.replace("?", self.param)

    @contextlib.contextmanager
    def transaction(self):
        try:
            yield self
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def ensure_schema(self, schema: str) -> None:
        self.execute(f"create schema if not exists {_quote(schema)}")

    def load_parquet(self, schema: str, table: str, path: Path) -> int:  # pragma: no cover
        raise NotImplementedError


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"

    def __init__(self, target: WarehouseTarget, read_only: bool = False):
        super().__init__(target)
        import duckdb

        path = target.settings.get("path", ":memory:")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = duckdb.connect(path, read_only=read_only)
        self.conn.execute("set TimeZone = 'UTC'")
        self.conn.execute("begin")

    def _cursor(self):
        return self.conn

    def commit(self) -> None:
        self.conn.execute("commit")
        self.conn.execute("begin")

    def rollback(self) -> None:
        self.conn.execute("rollback")
        self.conn.execute("begin")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.execute("commit")
        self.conn.close()

    def load_parquet(self, schema: str, table: str, path: Path) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.ensure_schema(schema)
        reader = pq.ParquetFile(path)
        target = qualified(schema, table)
        self.execute(f"drop table if exists {target}")
        n = 0
        for i, batch in enumerate(reader.iter_batches(batch_size=500_000)):
            arrow = _naive_utc(pa.Table.from_batches([batch]))
            self.conn.register("_pg_batch", arrow)
            if i == 0:
                self.execute(f"create table {target} as select * from _pg_batch")
            else:
                self.execute(f"insert into {target} select * from _pg_batch")
            self.conn.unregister("_pg_batch")
            n += arrow.num_rows
        if n == 0:
            arrow = _naive_utc(reader.schema_arrow.empty_table())
            self.conn.register("_pg_batch", arrow)
            self.execute(f"create table {target} as select * from _pg_batch")
            self.conn.unregister("_pg_batch")
        self.commit()
        return n


_PG_TYPES = {
    "string": "text",
    "large_string": "text",
    "double": "double precision",
    "float": "real",
    "int64": "bigint",
    "int32": "integer",
    "int16": "smallint",
    "bool": "boolean",
    "date32[day]": "date",
}


def _pg_type(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_decimal(t):
        return "numeric"
    return _PG_TYPES.get(str(t), "text")


class PostgresWarehouse(Warehouse):
    kind = "postgres"
    param = "%s"

    def __init__(self, target: WarehouseTarget):
        super().__init__(target)
        try:
            import psycopg2
        except ImportError as exc:  # pragma: no cover - depends on extras
            raise ConfigError(
                "the postgres target needs the extra: pip install 'phasegate[postgres]'"
            ) from exc
        s = target.settings
        self.conn = psycopg2.connect(
            host=s.get("host", "127.0.0.1"),
            port=int(s.get("port", 5432)),
            user=s.get("user"),
            password=s.get("password") or None,
            dbname=s.get("dbname") or s.get("database"),
            connect_timeout=10,
        )
        self._cur = self.conn.cursor()

    def _cursor(self):
        return self._cur

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.commit()
        self.conn.close()

    def load_parquet(self, schema: str, table: str, path: Path) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.ensure_schema(schema)
        reader = pq.ParquetFile(path)
        target = qualified(schema, table)
        cols = ", ".join(f"{_quote(f.name)} {_pg_type(f.type)}" for f in reader.schema_arrow)
        self.execute(f"drop table if exists {target}")
        self.execute(f"create table {target} ({cols})")
        n = 0
        for batch in reader.iter_batches(batch_size=200_000):
            frame = _naive_utc(pa.Table.from_batches([batch])).to_pandas()
            buf = io.StringIO()
            frame.to_csv(buf, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f")
            buf.seek(0)
            self._cur.copy_expert(f"copy {target} from stdin with (format csv, null '\\N')", buf)
            n += len(frame)
        self.commit()
        return n


def connect(project_dir: Path, target: str | None = None, read_only: bool = False) -> Warehouse:
    t = load_target(project_dir, target)
    if t.type == "duckdb":
        return DuckDBWarehouse(t, read_only=read_only)
    if t.type == "postgres":
        return PostgresWarehouse(t)
    raise ConfigError(f"warehouse type '{t.type}' is not supported by the Python jobs yet")
