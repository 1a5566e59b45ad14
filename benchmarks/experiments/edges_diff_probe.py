"""What maintaining the identity edges by a diff would cost, against rebuilding them (session 15).

    .venv/bin/python benchmarks/experiments/edges_diff_probe.py DB COMPILED_EDGES_SQL

DB is a benchmark database after a build (it is written to: two scratch tables, dropped at the
end); COMPILED_EDGES_SQL is dbt's compiled int_identity_edges_normalized.sql from that build
(`<out>/target/compiled/phasegate/models/intermediate/`), of a phasegate before e6ddb0b, which
made edges a diff (this reads the rebuild's select out of it). Times: normalising and writing every
link (what a rebuild does), hashing every input row as it is now, and the diff of those hashes
both ways against stored ones (what an unchanged day would do instead).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

# The inputs that decide an edge row: the raw link, when and where it was seen, and the linked
# customer's country (phones are normalised with it).
INPUT_HASH = "hash(w.type_a, w.raw_a, w.type_b, w.raw_b, w.observed_at, w.link_source, w.country)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("compiled_sql", type=Path)
    args = ap.parse_args()
    src = args.compiled_sql.read_text()
    body = src[src.index("\nwith customers as") : src.rindex(") as b")]
    # The CTEs up to with_country: the raw links with their customer's country, not normalised.
    inputs = body[: body.index("phone_digits as (")].rstrip().rstrip(",")
    con = duckdb.connect(str(args.db))
    con.execute("set TimeZone = 'UTC'")
    con.execute("set disabled_compression_methods = 'fsst,dictionary'")  # phasegate's default

    def timed(label: str, sql: str) -> None:
        start = time.perf_counter()
        rows = con.execute(sql).fetchall()
        print(f"{label}: {time.perf_counter() - start:.2f} s {rows}", flush=True)

    timed("rebuild: normalise and write every link", f"create or replace table probe_edges as {body}")
    timed(
        "setup: store the input hashes",
        f"create or replace table probe_hashes as {inputs} "
        f"select {INPUT_HASH} as input_hash from with_country as w",
    )
    con.execute("checkpoint")
    timed(
        "inputs hashed now",
        f"select count(*), sum({INPUT_HASH}) from ({inputs} select * from with_country) as w",
    )
    timed(
        "diff both ways",
        f"""{inputs}, now as (select {INPUT_HASH} as input_hash from with_country as w)
        select
            (select count(*) from now as n left join probe_hashes as s on s.input_hash = n.input_hash
             where s.input_hash is null),
            (select count(*) from probe_hashes as s left join now as n on n.input_hash = s.input_hash
             where n.input_hash is null)""",
    )
    con.execute("drop table probe_edges; drop table probe_hashes")


if __name__ == "__main__":
    main()
