"""Crash trials for the sync engine. A real warehouse is built once; each trial copies it, runs
`phasegate sync` as a real process against a loopback fake of the platform, SIGKILLs it at a
point chosen by a seed (the k-th request arriving at, or answered by, the fake), then reruns
the sync to completion and compares the fake's view with the ledger's.

Vocabulary: a record is *recorded* once its batch's acknowledgement is committed to the
ledger. A batch the platform answered but whose acknowledgement was not yet committed is still
in flight, and is resent: that is the price of at-least-once delivery, and bounded by the
destination's max_concurrency. Each run uses its own credential, so the fake tells the killed
run's requests from the rerun's even when the dead process's last request is read late."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from conftest import BIN, END, REPO, warehouse_env
from fakes.braze import FakeBraze
from fakes.segment import FakeSegment
from phasegate import api
from phasegate.config import load_config
from phasegate.errors import ExitCode

pytestmark = pytest.mark.timeout(900)

SYNC = "crash"
RAW, OPS = "raw_crash", "ops_crash"
# One credential per run. Distinctive, so a leak is found by substring search.
KEYS = ("ck-first-run-R2d8VqY6nP", "ck-rerun-T5m1ZwH3sK")
FAST_RETRY = {"budget_s": 10, "max_attempts": 6, "initial_backoff_s": 0.01, "max_backoff_s": 0.1}
TRIALS = 26

Identity = tuple  # ("identify", key) | ("track", event name, transition id)


class Tagged:
    """Mixin for a fake platform: accepts one credential per run and tags requests with it,
    lets the test wait for a run's k-th request to arrive or be answered, can start an outage
    after a run's k-th request, and logs every record it applied as (run, identity, dedup key)."""

    def tag_runs(self, credentials: list[str]) -> None:
        self.run_of = {c: i for i, c in enumerate(credentials)}
        self.progress = threading.Condition()
        self.arrived = [0] * len(credentials)
        self.answered = [0] * len(credentials)
        self.active = self.peak_active = 0
        self.applied: list[tuple[int, Identity, str | None]] = []
        self.outage_after: tuple[int, int] | None = None  # (run, k)

    def __enter__(self):
        super().__enter__()
        # Python's server writes headers and body apart; without TCP_NODELAY every reply waits
        # ~40 ms for a delayed ACK, which would only slow the trials down
        self._server.RequestHandlerClass.disable_nagle_algorithm = True
        return self

    def run(self, headers) -> int | None:
        return self.run_of.get(headers.get("authorization") or headers.get("Authorization") or "")

    def authorized(self, req) -> bool:
        return self.run(req.headers) is not None

    def _serve(self, h) -> None:
        run = self.run(h.headers)
        with self.progress:
            if run is not None:
                self.arrived[run] += 1
                if self.outage_after and (run, self.arrived[run]) == self.outage_after:
                    self.fail_next(100_000, 503)
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
            self.progress.notify_all()
        try:
            super()._serve(h)
        finally:
            with self.progress:
                self.active -= 1
                if run is not None:
                    self.answered[run] += 1
                self.progress.notify_all()

    def end_outage(self) -> None:
        with self.lock:
            self._faults.clear()

    def applied_in(self, run: int) -> list[Identity]:
        return [ident for r, ident, _ in self.applied if r == run]


class CrashSegment(Tagged, FakeSegment):
    def __init__(self):
        super().__init__(KEYS[0])
        self.tag_runs(["Basic " + base64.b64encode(f"{k}:".encode()).decode() for k in KEYS])

    def handle(self, req):
        reply = super().handle(req)
        if reply.status == 200 and req.path == "/v1/batch":
            for m in req.json()["batch"]:
                if m["type"] == "identify":
                    ident = ("identify", m["userId"])
                else:
                    ident = ("track", m["event"], m["properties"]["transition_id"])
                self.applied.append((self.run(req.headers), ident, m["messageId"]))
        return reply


class CrashBraze(Tagged, FakeBraze):
    """Braze has no dedup key: every replayed object is applied again."""

    def __init__(self):
        super().__init__(KEYS[0])
        self.tag_runs([f"Bearer {k}" for k in KEYS])

    def handle(self, req):
        reply = super().handle(req)
        if reply.status == 201 and req.path == "/users/track":
            body = req.json()
            refused = {(e["input_array"], e["index"]) for e in (reply.body or {}).get("errors", [])}
            run = self.run(req.headers)
            for i, obj in enumerate(body.get("attributes", [])):
                if ("attributes", i) not in refused:
                    self.applied.append((run, ("identify", obj["external_id"]), None))
            for i, obj in enumerate(body.get("events", [])):
                if ("events", i) not in refused:
                    ident = ("track", obj["name"], obj["properties"]["transition_id"])
                    self.applied.append((run, ident, None))
        return reply


FAKES = {"segment": CrashSegment, "braze": CrashBraze}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, generated) -> Path:
    """Sources loaded and a week of phase history backfilled, once for every trial."""
    root = tmp_path_factory.mktemp("crash_warehouse")
    env = warehouse_env("duckdb", root)
    env["DBT_TARGET_PATH"] = str(root / "dbt_target")
    path = root / "phasegate.yml"
    path.write_text(
        yaml.safe_dump({"version": 1, "project_dir": str(REPO), "source_schema": RAW, "ops_schema": OPS})
    )
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        cfg = load_config(path)
        api.load_sources(cfg, generated)
        api.backfill(cfg, date(2026, 11, 14), END)
    return Path(env["PHASEGATE_DUCKDB_PATH"])


def make_trial(warehouse: Path, where: Path, platform: str, url: str, batch_size: int, concurrency: int):
    """A project of its own (so its lock too) over a copy of the warehouse. The file keeps its
    name: dbt's views refer to the database by it."""
    where.mkdir(parents=True)
    shutil.copy(warehouse, where / warehouse.name)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(REPO / name, where / name)
    dest = {"type": platform, "base_url": url, "max_concurrency": concurrency, "retry": FAST_RETRY}
    dest["write_key_env" if platform == "segment" else "api_key_env"] = "CRASH_KEY"
    cfg = {
        "version": 1,
        "project_dir": str(where),
        "source_schema": RAW,
        "ops_schema": OPS,
        # the gates are tested elsewhere; here they would only slow every start
        "checks": {"require_dbt_tests": False, "great_expectations": False, "payload": {"enabled": False}},
        "syncs": [
            {
                "name": SYNC,
                "destination": dest,
                "fields": ["orders_lifetime"],
                "identifiers": ["email"],
                "batch_size": batch_size,
            }
        ],
    }
    path = where / "phasegate.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path, warehouse_env("duckdb", where)


def start_cli(path: Path, env: dict, key: str) -> subprocess.Popen:
    logs = path.parent
    return subprocess.Popen(
        [str(BIN / "phasegate"), "sync", "--config", str(path)],
        env={**env, "CRASH_KEY": key},
        stdout=(logs / "stdout.log").open("w"),
        stderr=(logs / "stderr.log").open("w"),
        cwd=path.parent,
    )


def rerun(path: Path, env: dict):
    """The rerun, in this process: the fake is already here, and a second interpreter start per
    trial would double the test's time without testing anything more."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {**env, "CRASH_KEY": KEYS[1]}.items():
            mp.setenv(k, v)
        return api.activate(load_config(path), progress=False).syncs[0]


def wait_until(fake: Tagged, proc: subprocess.Popen, ready, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with fake.progress:
        while not ready():
            if proc.poll() is not None:
                log = (Path(proc.args[3]).parent / "stderr.log").read_text()[-3000:]
                pytest.fail(f"sync exited ({proc.returncode}) before {what}:\n{log}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            fake.progress.wait(0.05)


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


@dataclass
class Ledger:
    recorded: set  # identities whose acknowledgement is committed
    event_ids: set
    runs: list[tuple[str, str, str]]  # (run_id, status, message), oldest first


def read_ledger(db: Path, ids: dict[str, Identity]) -> Ledger:
    # read-write: a killed writer leaves a WAL, which opening replays
    con = duckdb.connect(str(db))
    try:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [OPS]
        ).fetchall()
        if ("sync_runs",) not in tables:
            return Ledger(set(), set(), [])
        keys = con.execute(f"select record_key from {OPS}.sync_state where sync_name = ?", [SYNC]).fetchall()
        events = con.execute(
            f"select event_id from {OPS}.delivered_events where sync_name = ?", [SYNC]
        ).fetchall()
        runs = con.execute(
            f"select run_id, status, coalesce(message, '') from {OPS}.sync_runs "
            "where sync_name = ? order by started_at",
            [SYNC],
        ).fetchall()
    finally:
        con.close()
    event_ids = {e for (e,) in events}
    return Ledger({("identify", k) for (k,) in keys} | {ids[e] for e in event_ids}, event_ids, runs)


@dataclass
class Reference:
    """An uninterrupted sync of the same warehouse to one platform: what each trial against
    that platform must end up with."""

    planned: set[Identity]
    id_of: dict[Identity, str]  # the record id (Segment's messageId) of every record
    ident_of: dict[str, Identity]
    ledger: Ledger
    status: str
    attributes: int
    events: int


@pytest.fixture(scope="module")
def references(warehouse, tmp_path_factory) -> dict[str, Reference]:
    """Plans differ by platform (Braze, an email channel, gets only customers who consented to
    email); record ids do not, so the Segment run's messageIds name every record."""
    applied, statuses, dbs = {}, {}, {}
    for platform, fake_type in FAKES.items():
        where = tmp_path_factory.mktemp(f"crash_reference_{platform}") / "t"
        with fake_type() as fake:
            path, env = make_trial(warehouse, where, platform, fake.url, 100, 2)
            statuses[platform] = rerun(path, env).status
        applied[platform], dbs[platform] = fake.applied, where / warehouse.name
    id_of = {ident: mid for _, ident, mid in applied["segment"]}
    ident_of = {mid: ident for ident, mid in id_of.items()}
    refs = {}
    for platform in FAKES:
        planned = [ident for _, ident, _ in applied[platform]]
        assert len(set(planned)) == len(planned), "the uninterrupted run sent some record twice"
        ledger = read_ledger(dbs[platform], ident_of)
        assert ledger.recorded == set(planned)
        attributes = sum(1 for ident in planned if ident[0] == "identify")
        assert attributes > 1000 and len(planned) - attributes > 50  # many batches of each kind
        refs[platform] = Reference(
            set(planned), id_of, ident_of, ledger, statuses[platform], attributes, len(planned) - attributes
        )
    return refs


def assert_complete(fake: Tagged, ref: Reference, after: Ledger) -> None:
    delivered = {ident for _, ident, _ in fake.applied}
    assert delivered == ref.planned, "a planned record was never delivered (or an unplanned one was)"
    assert after.recorded == ref.ledger.recorded == delivered, "ledger and platform disagree"
    assert after.event_ids == ref.ledger.event_ids
    if isinstance(fake, CrashSegment):
        # the same dedup key on every send, so the platform applied each record exactly once
        keys = {(ident, mid) for _, ident, mid in fake.applied}
        assert keys == {(ident, ref.id_of[ident]) for ident in ref.planned}
        assert fake._message_ids == {ref.id_of[ident] for ident in ref.planned}


@pytest.mark.parametrize("seed", range(TRIALS))
def test_sigkill_then_rerun_delivers_everything_once_recorded(seed, warehouse, references, tmp_path):
    rng = random.Random(seed)
    platform = "braze" if seed % 4 == 3 else "segment"
    reference = references[platform]
    batch_size, concurrency = rng.choice([40, 75, 120]), rng.choice([1, 2, 3, 4])
    batches = -(-reference.attributes // batch_size) + -(-reference.events // batch_size)
    requests = batches * (-(-batch_size // 75) if platform == "braze" else 1)
    k = rng.randint(1, int(requests * 0.9))  # the first request is check()'s
    moment = rng.choice(["arrived", "answered"])
    with FAKES[platform]() as fake:
        path, env = make_trial(warehouse, tmp_path / "t", platform, fake.url, batch_size, concurrency)
        proc = start_cli(path, env, KEYS[0])
        counter = getattr(fake, moment)
        wait_until(fake, proc, lambda: counter[0] >= k, f"request {k} {moment}")
        with fake.progress:  # the server does not advance while the kill is on its way
            kill(proc)
        db = path.parent / warehouse.name
        before = read_ledger(db, reference.ident_of)
        summary = rerun(path, env)
        after = read_ledger(db, reference.ident_of)

    # taken now: the dead process's last request may have been read after the kill
    sent_before = fake.applied_in(0)
    assert before.recorded <= set(sent_before), "the ledger recorded what the platform never took"
    assert summary.status == reference.status
    assert_complete(fake, reference, after)
    resent = Counter(fake.applied_in(1)) & Counter(sent_before)
    assert not set(resent) & before.recorded, "a recorded record was sent again"
    # only the batches in flight at the kill are sent twice
    assert sum(resent.values()) <= concurrency * batch_size
    for run in (0, 1):
        assert all(n == 1 for n in Counter(fake.applied_in(run)).values())
    killed, last = after.runs[-2:] if len(after.runs) > 1 else (None, after.runs[-1])
    assert last[1] == reference.status
    if killed is not None:
        assert killed[1] == "interrupted" and last[0] in killed[2]


def test_a_killed_lock_holder_leaves_a_stale_lock_the_rerun_recovers(warehouse, references, tmp_path):
    reference = references["segment"]
    with CrashSegment() as fake:
        path, env = make_trial(warehouse, tmp_path / "t", "segment", fake.url, 100, 3)
        lock = path.parent / ".phasegate" / "locks" / f"{SYNC}.lock"
        proc = start_cli(path, env, KEYS[0])
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text() == str(proc.pid)):
            assert proc.poll() is None, "sync exited before taking its lock"
            assert time.monotonic() < deadline, "sync never took its lock"
            time.sleep(0.005)  # polling a file: there is nothing to block on
        kill(proc)
        assert lock.read_text() == str(proc.pid)  # left behind by the dead holder

        summary = rerun(path, env)
        after = read_ledger(path.parent / warehouse.name, reference.ident_of)
        assert lock.read_text() == str(os.getpid())
    assert summary.status == reference.status
    assert_complete(fake, reference, after)


def test_an_outage_stops_the_run_cleanly_and_the_next_run_sends_the_rest(warehouse, references, tmp_path):
    """Past the retry budget the run stops submitting, records the batches that finished,
    is marked failed with a message naming no secret, and exits with its own code; the next
    run sends the rest with the same record ids."""
    reference = references["segment"]
    with CrashSegment() as fake:
        retry = {"budget_s": 2, "max_attempts": 3, "initial_backoff_s": 0.01, "max_backoff_s": 0.05}
        path, env = make_trial(warehouse, tmp_path / "t", "segment", fake.url, 60, 3)
        raw = yaml.safe_load(path.read_text())
        raw["syncs"][0]["destination"]["retry"] = retry
        path.write_text(yaml.safe_dump(raw))
        fake.outage_after = (0, 10)  # from the 10th request on: check() and 8 batches go through
        proc = start_cli(path, env, KEYS[0])
        assert proc.wait(timeout=120) == ExitCode.UNAVAILABLE
        stderr = (path.parent / "stderr.log").read_text()
        stdout = (path.parent / "stdout.log").read_text()
        db = path.parent / warehouse.name
        failed = read_ledger(db, reference.ident_of)
        fake.end_outage()

        assert "error: sync 'crash' stopped after" in stderr and "HTTP 503" in stderr
        assert "next run sends them, with the same record ids" in stderr
        run_id, status, message = failed.runs[-1]
        assert status == "failed" and "HTTP 503" in message and "not acknowledged" in message
        for text in (stderr, stdout, message):
            assert KEYS[0] not in text
        # every batch the platform took before the outage was recorded; nothing else was
        sent = fake.applied_in(0)
        # (racing requests may take the outage's first reply; invalid emails are never sent)
        assert failed.recorded == set(sent) and 6 * 60 <= len(sent) <= 8 * 60

        summary = rerun(path, env)
        after = read_ledger(db, reference.ident_of)
    assert summary.status == reference.status
    assert_complete(fake, reference, after)
    assert not set(fake.applied_in(1)) & set(sent)
    assert [r[1] for r in after.runs] == ["failed", reference.status]


def test_batches_overlap_up_to_max_concurrency_and_never_beyond(warehouse, references, tmp_path):
    reference = references["segment"]
    with CrashSegment() as fake:
        path, env = make_trial(warehouse, tmp_path / "t", "segment", fake.url, 100, 3)
        fake.slow_next(1000, 0.05)  # slow answers, so batches overlap whenever the engine lets them
        summary = rerun(path, env)
        after = read_ledger(path.parent / warehouse.name, reference.ident_of)
    assert fake.peak_active == 3
    assert summary.status == reference.status
    assert_complete(fake, reference, after)


# --- destinations that refuse, and syncs that fail beside others ---------------------------

WRONG_KEY = "ck-wrong-account-J7p2XcL9qB"


class RevokingBraze(CrashBraze):
    """Refuses every request after the first `revoke_after`, as Braze does once a key is
    revoked mid-run (401 for the whole request)."""

    revoke_after: int | None = None

    def authorized(self, req) -> bool:
        revoked = self.revoke_after is not None and len(self.requests) > self.revoke_after
        return super().authorized(req) and not revoked


def _runs(db: Path) -> dict[str, tuple[str, str]]:
    con = duckdb.connect(str(db))
    try:
        rows = con.execute(f"select sync_name, status, coalesce(message, '') from {OPS}.sync_runs").fetchall()
    finally:
        con.close()
    return {name: (status, message) for name, status, message in rows}


def test_a_wrong_credential_exits_refused_naming_the_sync_and_the_fix(warehouse, tmp_path):
    """A 401 for the whole request is permanent: its own exit code (not 70), an error naming
    the sync and the variable to fix, nothing sent, and no secret anywhere."""
    with CrashBraze() as fake:
        path, env = make_trial(warehouse, tmp_path / "t", "braze", fake.url, 100, 2)
        proc = start_cli(path, env, WRONG_KEY)
        assert proc.wait(timeout=300) == ExitCode.REFUSED == 7
        requests = len(fake.requests)
    stderr = (path.parent / "stderr.log").read_text()
    stdout = (path.parent / "stdout.log").read_text()
    assert "error: sync 'crash' stopped after 0 of" in stderr and "HTTP 401" in stderr
    assert "$CRASH_KEY" in stderr and "then rerun" in stderr
    assert "Traceback" not in stderr
    status, message = _runs(path.parent / warehouse.name)[SYNC]
    assert status == "failed" and "HTTP 401" in message and "$CRASH_KEY" in message
    for text in (stderr, stdout, message):
        assert WRONG_KEY not in text and KEYS[0] not in text
    assert requests == 1 and fake.applied == []  # check() alone: nothing was sent


def test_a_key_revoked_mid_run_stops_cleanly_and_the_rerun_sends_the_rest(warehouse, references, tmp_path):
    reference = references["braze"]
    with RevokingBraze() as fake:
        path, env = make_trial(warehouse, tmp_path / "t", "braze", fake.url, 100, 1)
        fake.revoke_after = 7  # check() and three batches of two requests go through
        proc = start_cli(path, env, KEYS[0])
        assert proc.wait(timeout=300) == ExitCode.REFUSED
        stderr = (path.parent / "stderr.log").read_text()
        db = path.parent / warehouse.name
        failed = read_ledger(db, reference.ident_of)
        sent = fake.applied_in(0)
        fake.revoke_after = None  # the key is fixed

        assert "error: sync 'crash' stopped after 300 of" in stderr and "HTTP 401" in stderr
        assert "$CRASH_KEY" in stderr and "with the same record ids" in stderr
        run_id, status, message = failed.runs[-1]
        assert status == "failed" and "HTTP 401" in message and KEYS[0] not in stderr + message
        # the three acknowledged batches are recorded (less records refused before sending);
        # the fourth batch's first request was refused, so none of it was applied
        assert failed.recorded == set(sent) and 280 < len(sent) <= 300

        summary = rerun(path, env)
        after = read_ledger(db, reference.ident_of)
    assert summary.status == reference.status
    assert {ident for _, ident, _ in fake.applied} == reference.planned
    assert after.recorded == reference.ledger.recorded
    assert not set(fake.applied_in(1)) & failed.recorded  # nothing recorded is sent again
    assert [r[1] for r in after.runs] == ["failed", reference.status]


LOCK_HOLDER = """
import sys, pathlib
from phasegate.locks import destination_lock
with destination_lock(pathlib.Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()  # hold until stdin closes
"""


def test_one_failing_destination_does_not_stop_the_other_syncs(warehouse, tmp_path):
    """Four syncs in one run: a refused credential, a held lock, an outage and a healthy file
    destination. Each fails on its own, the healthy one still sends, every sync is in the
    summary and in sync_runs, and the run exits with the most severe code (7 > 6 > 4)."""
    quick = {"budget_s": 1, "max_attempts": 2, "initial_backoff_s": 0.01, "max_backoff_s": 0.05}
    with FakeBraze(KEYS[0]) as braze, FakeSegment(KEYS[1]) as segment:
        segment.fail_next(100_000, 503)
        path, env = make_trial(warehouse, tmp_path / "t", "segment", segment.url, 200, 2)
        raw = yaml.safe_load(path.read_text())
        base = {"fields": ["orders_lifetime"], "identifiers": ["email"], "batch_size": 200}
        raw["syncs"] = [
            {
                "name": "refused",
                "destination": {"type": "braze", "base_url": braze.url, "api_key_env": "REFUSED_KEY"},
                **base,
            },
            {"name": "busy", "destination": {"type": "file", "path": str(tmp_path / "busy")}, **base},
            {
                "name": "down",
                "destination": {
                    "type": "segment",
                    "base_url": segment.url,
                    "write_key_env": "DOWN_KEY",
                    "retry": quick,
                },
                **base,
            },
            {"name": "feed", "destination": {"type": "file", "path": str(tmp_path / "feed")}, **base},
        ]
        path.write_text(yaml.safe_dump(raw))
        locks = path.parent / ".phasegate" / "locks"
        holder = subprocess.Popen(
            [str(BIN / "python"), "-c", LOCK_HOLDER, str(locks), "busy"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "locked"
            proc = subprocess.run(
                [str(BIN / "phasegate"), "sync", "--config", str(path)],
                env={**env, "REFUSED_KEY": WRONG_KEY, "DOWN_KEY": KEYS[1]},
                capture_output=True,
                text=True,
                timeout=300,
                cwd=path.parent,
            )
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        braze_requests = len(braze.requests)
    (path.parent / "stdout.log").write_text(proc.stdout)  # kept for a failure's post-mortem
    (path.parent / "stderr.log").write_text(proc.stderr)

    assert proc.returncode == ExitCode.REFUSED, proc.stderr[-3000:]
    # one error line per problem, the one that sets the exit code last
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3, proc.stderr[-3000:]
    assert errors[0].startswith("error: sync 'busy' is already running")
    assert errors[1].startswith("error: sync 'down' stopped after 0 of") and "HTTP 503" in errors[1]
    assert errors[2].startswith("error: sync 'refused' stopped after 0 of") and "HTTP 401" in errors[2]
    assert "$REFUSED_KEY" in errors[2]
    # the summary shows every sync, in order, with what became of it
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in _table_rows(proc.stdout)}
    assert list(rows) == ["refused", "busy", "down", "feed"]
    assert rows["refused"].startswith("failed:") and rows["down"].startswith("failed:")
    assert rows["busy"].startswith("locked:") and rows["feed"] == "sent"

    runs = _runs(path.parent / warehouse.name)
    assert {name: status for name, (status, _) in runs.items()} == {
        "refused": "failed",
        "busy": "locked",
        "down": "failed",
        "feed": "success",
    }
    assert "HTTP 401" in runs["refused"][1] and "HTTP 503" in runs["down"][1]
    assert "already running" in runs["busy"][1]
    for text in (proc.stdout, proc.stderr, *(m for _, m in runs.values())):
        assert WRONG_KEY not in text and KEYS[0] not in text and KEYS[1] not in text
    assert braze_requests == 1  # check() only
    files = sorted((tmp_path / "feed").rglob("*.jsonl"))
    feed = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(feed) > 1000 and not list((tmp_path / "busy").rglob("*.jsonl"))


def _table_rows(stdout: str) -> list[str]:
    """The first line of each row of the `syncs` table (a wrapped cell continues on lines
    whose first column is blank)."""
    lines = stdout.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.strip() == "syncs") :]
    header = next(i for i, line in enumerate(body) if line.startswith("┡"))
    rows = []
    for line in body[header + 1 :]:
        if line.startswith("└"):
            break
        if line.split("│")[1].strip():
            rows.append(line)
    return rows
