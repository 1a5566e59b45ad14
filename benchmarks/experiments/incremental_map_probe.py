"""Probe (session 16): the identifier map rebuilt incrementally, level by level into temp tables.

    .venv/bin/python benchmarks/experiments/incremental_map_probe.py \
        benchmarks/out/after_full_1000000.duckdb benchmarks/out/bench_1000000.duckdb

Reads two databases of one `benchmarks/run.py --snapshot` run: OLD, the snapshot after the full
build, and NEW, the database after the incremental day (its identifier map is that day's
rebuild). It recomputes OLD's map keeping each identifier's observed_at (not timed), checks it
equals the stored one, then times the incremental steps the model would take:

1. the links that changed (here a diff of edges' input_key both ways; in the model, the edge
   rows written since the map last read them, and removed links kept as tombstones carrying
   their endpoints until the map has read them);
2. seeds: their endpoints, and customers added, removed or re-dated;
3. the region: everything within max_hops of a seed over usable links (a user_id is entered
   but not passed through, as in the search);
4. the search over the region alone, from its customers at hop 0 and from the stored
   identifiers bordering it at their stored hops (outside the region nothing can change);
5. the ranking of every customer an identifier of the region left or joined;

and checks the map so updated equals NEW's rebuild, row for row. NEW is attached under the
name its own views use (bench_1000000). Session 16's run: 170,660 changed links (101,740 added,
69,002 removed: event-collected links move their observed_at), 503,732 identifiers in the
region, 7.0 s in all (diff 2.1, region 2.1, search and ranking 2.8 s) against 10.3 s for the
rebuild's select alone (cold) and 13.2 s for the model; equal to the rebuild both ways.
"""

import sys
import time

import duckdb

OLD, NEW = sys.argv[1], sys.argv[2]
HOPS, MAX_LINKS, MAX_IDS = 4, 25, 50
c = duckdb.connect()
c.execute("set TimeZone='UTC'; set enable_progress_bar=false")
c.execute(f"attach '{NEW}' as bench_1000000 (read_only)")
c.execute(f"attach '{OLD}' as od (read_only)")
N = "bench_1000000.main"


def q(label, sql, timed=True):
    s = time.perf_counter()
    r = c.execute(sql).fetchall()
    if timed:
        print(f"{time.perf_counter() - s:6.2f}s {label} {r[:1] if r else ''}", flush=True)
    return r


def links_both_ways(edges):
    return f"""
    with u as (select type_a, value_a, type_b, value_b, observed_at from {edges} where drop_reason is null),
    o as (
      select type_a tl, value_a vl, type_b th, value_b vh, observed_at from u
      where type_a < type_b or (type_a = type_b and value_a <= value_b)
      union all
      select type_b, value_b, type_a, value_a, observed_at from u
      where not (type_a < type_b or (type_a = type_b and value_a <= value_b))),
    d as (select tl, vl, th, vh, max(observed_at) observed_at from o group by all)
    select tl from_type, vl from_value, th to_type, vh to_value, observed_at from d
    union all select th, vh, tl, vl, observed_at from d where not (tl = th and vl = vh)"""


def full_map(edges, customers, into):
    """The model's rebuild, with observed_at kept (setup, untimed)."""
    c.execute(f"create or replace temp table lk as {links_both_ways(edges)}")
    c.execute(f"""create or replace temp table hub as select from_type it, from_value iv from lk
        where from_type <> 'user_id' group by all having count(*) > {MAX_LINKS}""")
    c.execute("""create or replace temp table g as select l.* from lk l
        left join hub a on a.it = l.from_type and a.iv = l.from_value
        left join hub b on b.it = l.to_type and b.iv = l.to_value where a.iv is null and b.iv is null""")
    c.execute(f"""create or replace temp table r as select 'user_id' identifier_type,
        customer_id identifier_value,
        customer_id, 0 hops, signup_at observed_at from {customers} where customer_id is not null""")
    for k in range(1, HOPS + 1):
        c.execute(f"""insert into r select identifier_type, identifier_value, customer_id, {k},
            observed_at from (
            select g.to_type identifier_type, g.to_value identifier_value, r.customer_id, g.observed_at,
              row_number() over (partition by g.to_type, g.to_value order by g.observed_at desc,
                  r.customer_id) rn
            from r join g on g.from_type = r.identifier_type and g.from_value = r.identifier_value
            left join r x on x.identifier_type = g.to_type and x.identifier_value = g.to_value
            where r.hops = {k - 1} and g.to_type <> 'user_id' and x.identifier_value is null) where rn = 1""")
    c.execute(f"""create or replace table {into} as select *, identifier_rank <= {MAX_IDS} within_limit from (
        select r.*, row_number() over (partition by customer_id order by hops, observed_at desc,
        identifier_type, identifier_value) identifier_rank from r)""")


customers_new = f"{N}.int_customers_unioned"
customers_old = f"(select * from {N}.int_customers_unioned where signup_at < timestamp '2026-11-20')"
s = time.perf_counter()
full_map("od.main.int_identity_edges_normalized", customers_old, "old_map")
print(f"setup old map {time.perf_counter() - s:.1f}s")
q(
    "old map equals stored",
    """select count(*) from (select identifier_type, identifier_value, customer_id, hops,
    identifier_rank, within_limit from old_map except all select identifier_type, identifier_value,
        customer_id,
    hops, identifier_rank, within_limit from od.main.int_identifiers_stitched)""",
)

T0 = time.perf_counter()
# 1. changed links (in the model: edges rows stamped with a batch above the map's; here a diff)
q(
    "changed links",
    """create or replace temp table ch as
    select type_a, value_a, type_b, value_b from (
      select input_key, type_a, value_a, type_b, value_b from bench_1000000.main.int_identity_edges_normalized
      where drop_reason is null) n
    where input_key not in (select input_key from od.main.int_identity_edges_normalized
        where drop_reason is null)
    union all
    select type_a, value_a, type_b, value_b from (
      select input_key, type_a, value_a, type_b, value_b from od.main.int_identity_edges_normalized
      where drop_reason is null) o
    where input_key not in (select input_key from bench_1000000.main.int_identity_edges_normalized
      where drop_reason is null);
    select count(*) from ch""",
)
T1 = time.perf_counter()
q(
    "seeds",
    f"""create or replace temp table seed as
    select type_a it, value_a iv from ch union select type_b, value_b from ch
    union select 'user_id', c.customer_id from {customers_new} c
      left join old_map m on m.identifier_type = 'user_id' and m.identifier_value = c.customer_id
      where c.customer_id is not null and (m.identifier_value is null or m.observed_at is distinct
          from c.signup_at)
    union select m.identifier_type, m.identifier_value from old_map m
      left join {customers_new} c on c.customer_id = m.identifier_value
      where m.hops = 0 and c.customer_id is null;
    select count(*) from seed""",
)
# 2. region: within HOPS of a seed over usable links (new; removed links are seeds' own)
E = (
    "(select type_a, value_a, type_b, value_b from bench_1000000.main.int_identity_edges_normalized"
    " where drop_reason is null)"
)
q("region_0", "create or replace temp table reg as select it, iv, 0 lvl from seed; select count(*) from reg")
for k in range(1, HOPS + 1):
    q(
        f"region_{k}",
        f"""insert into reg
        select distinct n.it, n.iv, {k} from (
          select e.type_b it, e.value_b iv from {E} e join reg r on r.lvl = {k - 1}
              and r.it = e.type_a and r.iv = e.value_a
          where r.it <> 'user_id' or {k - 1} = 0
          union all
          select e.type_a, e.value_a from {E} e join reg r on r.lvl = {k - 1} and r.it = e.type_b
              and r.iv = e.value_b
          where r.it <> 'user_id' or {k - 1} = 0) n
        left join reg x on x.it = n.it and x.iv = n.iv where x.iv is null;
        select count(*) from reg""",
    )
T2 = time.perf_counter()
# 3. every usable link touching the region (both ways), hub counts of region identifiers
q(
    "region links",
    f"""create or replace temp table rl as
    select e.* from {E.replace("select type_a", "select observed_at, type_a")} e
        join reg r on r.it = e.type_a and r.iv = e.value_a
    union select e.* from {E.replace("select type_a", "select observed_at, type_a")} e
        join reg r on r.it = e.type_b and r.iv = e.value_b;
    select count(*) from rl""",
)
print("elapsed so far", round(time.perf_counter() - T0, 2))
# 4. search the region: its customers at hop 0, and stored identifiers bordering it at their hops
q(
    "region graph",
    f"""create or replace temp table lkr as {links_both_ways("rl").replace("where drop_reason is null", "")};
    create or replace temp table hubr as select l.from_type it, l.from_value iv from lkr l
      join reg r on r.it = l.from_type and r.iv = l.from_value
      where l.from_type <> 'user_id' group by all having count(*) > {MAX_LINKS};
    create or replace temp table gr as select l.* from lkr l
      join reg r on r.it = l.to_type and r.iv = l.to_value
      left join hubr a on a.it = l.from_type and a.iv = l.from_value
      left join hubr b on b.it = l.to_type and b.iv = l.to_value
      where a.iv is null and b.iv is null and l.to_type <> 'user_id';
    select count(*) from gr""",
)
q(
    "border",
    """create or replace temp table border as
    select g.to_type, g.to_value, s.customer_id, s.hops from_hops, g.observed_at
    from gr g left join reg x on x.it = g.from_type and x.iv = g.from_value
    join old_map s on s.identifier_type = g.from_type and s.identifier_value = g.from_value
    where x.iv is null; select count(*) from border""",
)
q(
    "reached_0",
    f"""create or replace temp table rr as select 'user_id' identifier_type, c.customer_id identifier_value,
    c.customer_id, 0 hops, c.signup_at observed_at from {customers_new} c
    join reg r on r.it = 'user_id' and r.iv = c.customer_id; select count(*) from rr""",
)
for k in range(1, HOPS + 1):
    q(
        f"reached_{k}",
        f"""insert into rr select identifier_type, identifier_value, customer_id, {k}, observed_at from (
        select c.*, row_number() over (partition by c.identifier_type, c.identifier_value
          order by c.observed_at desc, c.customer_id) rn
        from (select g.to_type identifier_type, g.to_value identifier_value, r.customer_id, g.observed_at
              from rr r join gr g on g.from_type = r.identifier_type and g.from_value = r.identifier_value
              where r.hops = {k - 1}
              union all
              select b.to_type, b.to_value, b.customer_id, b.observed_at from border b
                  where b.from_hops = {k - 1}) c
        left join rr x on x.identifier_type = c.identifier_type and x.identifier_value = c.identifier_value
        where x.identifier_value is null) where rn = 1; select count(*) from rr""",
    )
# 5. rank again the customers a region identifier left or joined
q(
    "touched + ranked",
    f"""create or replace temp table touched as
      select customer_id from rr union
      select s.customer_id from old_map s join reg r on r.it = s.identifier_type
          and r.iv = s.identifier_value;
    create or replace temp table ranked as select *, identifier_rank <= {MAX_IDS} within_limit from (
      select u.*, row_number() over (partition by customer_id order by hops, observed_at desc,
        identifier_type, identifier_value) identifier_rank from (
        select * from rr
        union all
        select s.identifier_type, s.identifier_value, s.customer_id, s.hops, s.observed_at
        from old_map s join touched t on t.customer_id = s.customer_id
        left join reg r on r.it = s.identifier_type and r.iv = s.identifier_value where r.iv is null) u);
    select count(*) from ranked""",
)
T3 = time.perf_counter()
print(
    f"incremental total {T3 - T0:.2f}s (diff {T1 - T0:.2f}s, region {T2 - T1:.2f}s, "
    f"search+rank {T3 - T2:.2f}s)"
)
# verification against the day's rebuild
q(
    "new map",
    """create or replace temp table new_map as
    select s.identifier_type, s.identifier_value, s.customer_id, s.hops, s.identifier_rank,
        s.within_limit from old_map s
    left join reg r on r.it = s.identifier_type and r.iv = s.identifier_value
    left join touched t on t.customer_id = s.customer_id
    where r.iv is null and t.customer_id is null
    union all select identifier_type, identifier_value, customer_id, hops, identifier_rank,
        within_limit from ranked;
    select count(*) from new_map""",
    timed=False,
)
q(
    "diff vs rebuild (new - rebuild)",
    """select count(*) from (select * from new_map except all
    select identifier_type, identifier_value, customer_id, hops, identifier_rank, within_limit
    from bench_1000000.main.int_identifiers_stitched)""",
)
q(
    "diff vs rebuild (rebuild - new)",
    """select count(*) from (select identifier_type, identifier_value, customer_id,
    hops, identifier_rank, within_limit from bench_1000000.main.int_identifiers_stitched except all
    select * from new_map)""",
)
