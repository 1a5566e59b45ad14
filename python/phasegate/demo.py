"""`phasegate demo`: the whole path on generated data, safe to run again."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

from phasegate import api
from phasegate.config import PhasegateConfig
from phasegate.dbt_runner import target_dir

log = logging.getLogger(__name__)


def _generated_matches(truth_path: Path, customers: int, days: int, seed: int) -> dict | None:
    if not truth_path.exists():
        return None
    truth = json.loads(truth_path.read_text())
    if any(not (truth_path.parent / name).exists() for name in truth.get("files", {}).values()):
        return None
    if "suppressions" not in truth.get("files", {}):
        return None  # generated before the suppression list existed
    params = truth.get("parameters", truth)
    if (params.get("customers"), params.get("days"), params.get("seed")) == (customers, days, seed):
        return truth
    return None


def run_demo(
    cfg: PhasegateConfig, customers: int, days: int, seed: int, backfill_days: int, data_dir: Path
) -> dict:
    from phasegate.generator import GeneratorConfig, generate

    truth_path = data_dir / "truth.json"
    truth = _generated_matches(truth_path, customers, days, seed)
    if truth is None:
        log.info("generating %s customers over %s days into %s", customers, days, data_dir)
        generate(GeneratorConfig(customers=customers, days=days, seed=seed, out=data_dir), progress=True)
        truth = json.loads(truth_path.read_text())
    else:
        log.info("reusing generated data in %s (same customers, days and seed)", data_dir)
    params = truth.get("parameters", truth)
    end = date.fromisoformat(str(params["end_date"])[:10])

    api.load_sources(cfg, data_dir)
    api.backfill(cfg, end - timedelta(days=backfill_days), end)
    report = api.activate(cfg, progress=True)
    outputs = {
        "generated data": str(data_dir.resolve()),
        "ground truth": str(truth_path.resolve()),
        "warehouse": api.phase_summary(cfg)["warehouse"],
        "dbt results": str(target_dir(Path(cfg.project_dir)) / "run_results.json"),
        "ledgers": f"schema {cfg.ops_schema} (sync_runs, sync_state, delivered_events, "
        "rejected_records, check_results, gx_results; `phasegate audit` lists the runs)",
    }
    for s in report.syncs:
        if s.output:
            outputs[f"sync {s.sync}"] = s.output
    return {"checks": report.checks, "syncs": report.syncs, "outputs": outputs}
