"""Resending on purpose: a record a platform rejected waits for `--retry-rejected` (or for
its data to change) instead of being resent every run, and `--full-resync` resends every
customer's attributes. Real DuckDB and dbt, the Braze fake over loopback HTTP."""

from __future__ import annotations

import subprocess

import yaml

from conftest import BIN, END, REPO, warehouse_env
from fakes.braze import FakeBraze
from phasegate import api
from phasegate.config import load_config
from phasegate.warehouse import connect, qualified

KEY = "bz-resend-test-Xq81Lm"


def test_rejected_records_wait_for_retry_and_full_resync_resends_all(tmp_path, monkeypatch, generated):
    env = warehouse_env("duckdb", tmp_path)
    env["DBT_TARGET_PATH"] = str(tmp_path / "dbt_target")
    env["PHASEGATE_TEST_BRAZE_KEY"] = KEY
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with FakeBraze(KEY) as fake:
        path = tmp_path / "phasegate.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "project_dir": str(REPO),
                    "source_schema": "raw",
                    "syncs": [
                        {
                            "name": "braze",
                            "destination": {
                                "type": "braze",
                                "base_url": fake.url,
                                "api_key_env": "PHASEGATE_TEST_BRAZE_KEY",
                            },
                            "consent_channel": "none",
                            "fields": ["orders_lifetime"],
                            "send_events": False,
                        }
                    ],
                }
            )
        )
        cfg = load_config(path)
        api.load_sources(cfg, generated)
        api.build(cfg, END)

        wh = connect(REPO, None)
        try:
            sendable = wh.query(
                f"select customer_id from {qualified(wh.schema, 'phasegate__phase_membership')} "
                f"except select customer_id from {qualified(wh.schema, 'phasegate__suppressed_customers')} "
                "order by 1 limit 3"
            )
        finally:
            wh.close()
        refused = {k for (k,) in sendable}
        fake.reject_keys = set(refused)
        first = api.activate(cfg, progress=False).syncs[0]
        assert first.rejected == 3 and first.sent == first.upserts - 3
        assert len(fake.profiles) == first.sent and not refused & set(fake.profiles)

        # Nothing changed: the rejected records are not resent on every run.
        second = api.activate(cfg, progress=False).syncs[0]
        assert (second.upserts, second.sent, second.rejected) == (0, 0, 0)

        # The cause is fixed at the platform; --retry-rejected (the CLI flag) resends them.
        fake.reject_keys = set()
        proc = subprocess.run(
            [str(BIN / "phasegate"), "sync", "--retry-rejected", "--config", str(path)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert refused <= set(fake.profiles)
        assert KEY not in proc.stdout + proc.stderr
        wh = connect(REPO, None)
        try:
            rows = wh.query(
                "select record_key, resolved_at is not null "
                f"from {qualified(cfg.ops_schema, 'rejected_records')}"
            )
            sent_last = wh.query(
                f"select sent from {qualified(cfg.ops_schema, 'sync_runs')} order by started_at desc limit 1"
            )
        finally:
            wh.close()
        assert sorted(rows) == sorted((k, True) for k in refused)
        assert sent_last == [(3,)]

        # --full-resync resends every customer's attributes; the run after it sends nothing.
        requests_before = len(fake.calls("/users/track"))
        resync = api.activate(cfg, progress=False, full_resync=True).syncs[0]
        assert resync.upserts == first.upserts and resync.sent == first.upserts
        assert len(fake.calls("/users/track")) > requests_before
        after = api.activate(cfg, progress=False).syncs[0]
        assert (after.upserts, after.sent) == (0, 0)
