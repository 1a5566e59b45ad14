"""Chunked driver: simulate, corrupt and write one chunk of customers at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from . import dirty as faults
from .catalog import US_PER_SECOND, Catalog, Window
from .config import GeneratorConfig
from .population import build_population, salt_for
from .simulate import Behaviour, simulate_purchases
from .writer import (
    ParquetSinks,
    consents_table,
    customers_table,
    events_tables,
    identities_table,
    suppressions_table,
    truth_table,
    write_json,
)

FILE_NAMES = ("customers", "identities", "events", "consents", "suppressions", "truth")


@dataclass(frozen=True)
class GenerateResult:
    files: dict[str, Path]
    rows: dict[str, int]
    truth_path: Path
    faults: dict[str, int] = field(default_factory=dict)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / US_PER_SECOND, tz=timezone.utc).isoformat()


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]generating[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("customers"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def generate(cfg: GeneratorConfig, progress: bool = False) -> GenerateResult:
    """Write the synthetic dataset described by ``cfg`` to ``cfg.out``.

    Chunks draw from independent ``SeedSequence`` children, so output depends only on the
    config (seed and chunk_size included), and memory is bounded by one chunk.
    """
    window = Window.from_config(cfg)
    catalog = Catalog(window)
    n_chunks = math.ceil(cfg.customers / cfg.chunk_size)
    seeds = np.random.SeedSequence(cfg.seed).spawn(n_chunks)
    id_width = max(7, len(str(cfg.customers)))
    event_salt = salt_for(cfg.seed, 0xE7E)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    counts: dict[str, int] = {}
    denominators: dict[str, int] = {}
    pool_used: list[np.ndarray] = []

    def tally(target: dict[str, int], values: dict[str, int]) -> None:
        for key, value in values.items():
            target[key] = target.get(key, 0) + int(value)

    with ParquetSinks(out) as sinks, _progress(progress) as bar:
        task = bar.add_task("generate", total=cfg.customers)
        for index, seed_seq in enumerate(seeds):
            rng = np.random.default_rng(seed_seq)
            first = index * cfg.chunk_size
            n = min(cfg.chunk_size, cfg.customers - first)
            pop = build_population(rng, cfg, window, first, n, id_width)
            buys = simulate_purchases(rng, cfg, pop.signup, window.end)
            events = Behaviour(rng, pop, buys, catalog).run()
            events, ev_counts, ev_dens = faults.inject_event_faults(rng, events, cfg.dirty, window.end)

            sinks.write("customers", customers_table(pop))
            sinks.write("identities", identities_table(pop))
            for table in events_tables(events, pop, catalog, index, event_salt):
                sinks.write("events", table)
            del events
            sinks.write("consents", consents_table(pop))
            sinks.write("truth", truth_table(pop, buys))
            # Its own stream, so the suppression list never shifts the other data.
            sup_rng = np.random.default_rng([cfg.seed, index, 0x5095])
            sinks.write(
                "suppressions",
                suppressions_table(sup_rng, pop, cfg.suppression_share, cfg.deletion_share, window.end),
            )

            tally(counts, ev_counts)
            tally(denominators, ev_dens)
            has_email = pop.email_kind != faults.EMAIL_NONE
            has_phone = pop.phone_kind != faults.PHONE_NONE
            tally(
                counts,
                {
                    "malformed_emails": (pop.email_kind == faults.EMAIL_MALFORMED).sum(),
                    "malformed_phones": (pop.phone_kind == faults.PHONE_MALFORMED).sum(),
                    "junk_identifiers": (pop.email_kind == faults.EMAIL_JUNK).sum(),
                    "unnormalised_emails": (pop.email_kind == faults.EMAIL_UNNORMALISED).sum(),
                    "shared_device_customers": pop.shared_device.sum(),
                },
            )
            tally(
                denominators,
                {
                    "malformed_emails": has_email.sum(),
                    "malformed_phones": has_phone.sum(),
                    "junk_identifiers": has_email.sum(),
                    "unnormalised_emails": has_email.sum(),
                    "shared_device_customers": n,
                },
            )
            pool_used.append(np.unique(pop.shared_pool_index))
            bar.advance(task, n)

    counts["shared_devices"] = int(len(np.unique(np.concatenate(pool_used))))
    files = {name: sinks.path(name) for name in FILE_NAMES}
    truth_path = out / "truth.json"
    write_json(
        truth_path,
        {
            "generator": "phasegate.generator",
            "parameters": {
                "r": cfg.r,
                "alpha": cfg.alpha,
                "a": cfg.a,
                "b": cfg.b,
                "seed": cfg.seed,
                "customers": cfg.customers,
                "days": cfg.days,
                "end_date": cfg.end_date.isoformat(),
                "chunk_size": cfg.chunk_size,
            },
            "window": {"start": _iso(window.start), "end": _iso(window.end)},
            "dirty": cfg.dirty.model_dump(),
            "faults": counts,
            "fault_denominators": denominators,
            "rows": dict(sinks.rows),
            "files": {name: path.name for name, path in files.items()},
        },
    )
    return GenerateResult(files=files, rows=dict(sinks.rows), truth_path=truth_path, faults=dict(counts))
