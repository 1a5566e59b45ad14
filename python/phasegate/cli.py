"""`phasegate` command line: a thin layer over phasegate.api. Logs go to stderr; results
(summaries, tables) to stdout. Exit codes are listed in `phasegate --help`."""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from phasegate import api
from phasegate.config import load_config
from phasegate.errors import SEVERITY, BlockedError, ExitCode, PhasegateError, severity_rank

# Wide tables when output is piped to a file or a scheduler's log.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

app = typer.Typer(
    help=(
        "phasegate: lifecycle journeys computed in your warehouse, activated behind gates.\n\n"
        "Typical cycle: `phasegate build` (dbt computes signals and phases), `phasegate check` "
        "(pre-activation gates), `phasegate sync` (send phase changes). `phasegate run` does "
        "all three; `phasegate demo` shows it end to end on generated data.\n\n"
        "Exit codes: 0 success; 1 some records rejected; 2 blocked by a check (nothing sent); "
        "3 configuration error; 4 another sync holds the lock; 5 dbt build failed; "
        "6 a destination stayed unavailable (timeouts, 5xx, 429) past its retry budget: the run "
        "stopped, and the next run sends what was not acknowledged; 7 a destination refused the "
        "request permanently (credentials, permissions, settings): fix them, then rerun; "
        "70 internal error (a bug).\n\n"
        "Each sync runs on its own: one that fails does not stop the others. When syncs end "
        "differently the most severe code wins, in this order: "
        f"{', '.join(str(c) for c in SEVERITY)} "
        "(first what needs a person before a rerun can succeed, then what a rerun clears)."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="phasegate.yml path (default ./phasegate.yml or $PHASEGATE_CONFIG)."),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Evaluate as of this date (YYYY-MM-DD); default today UTC."),
]


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD", param_hint=name) from None


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging on stderr.")] = False,
) -> None:
    _setup_logging(verbose)


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 10_000,
    days: Annotated[int, typer.Option(help="Days of history ending at --end-date.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the Parquet files.")] = Path(
        "data/demo"
    ),
    end_date: Annotated[str | None, typer.Option(help="Last day of data (default today UTC).")] = None,
    chunk_size: Annotated[int, typer.Option(help="Customers per chunk (bounds memory).")] = 50_000,
) -> None:
    """Generate a realistic synthetic dataset (customers, identities, events, consents) with
    known ground truth (BG/NBD purchase and dropout process) and small dirty-data rates."""
    from phasegate.generator import GeneratorConfig
    from phasegate.generator import generate as run_generate

    kwargs = dict(customers=customers, days=days, seed=seed, out=out_dir, chunk_size=chunk_size)
    if end_date:
        kwargs["end_date"] = _date(end_date, "--end-date")
    result = run_generate(GeneratorConfig(**kwargs), progress=True)
    table = Table(title=f"generated into {out_dir}")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, n in result.rows.items():
        table.add_row(str(result.files.get(name, name)), f"{n:,}")
    out.print(table)
    out.print(f"ground truth: {result.truth_path}")


@app.command()
def load(
    data: Annotated[
        Path, typer.Option(help="Directory with customers/identities/events/consents .parquet.")
    ] = Path("data/demo"),
    config: ConfigOpt = None,
) -> None:
    """Load source-contract Parquet files into the warehouse's source schema (replacing it)."""
    cfg = load_config(config)
    rows = api.load_sources(cfg, data)
    for t, n in rows.items():
        out.print(f"loaded {t}: {n:,} rows")


@app.command()
def build(
    config: ConfigOpt = None,
    as_of: AsOfOpt = None,
    full_refresh: Annotated[bool, typer.Option(help="Rebuild incremental models from scratch.")] = False,
    select: Annotated[
        str | None, typer.Option(help="dbt selector, e.g. +phasegate__phase_membership.")
    ] = None,
    unit_tests: Annotated[
        bool,
        typer.Option(
            help="Also run the package's dbt unit tests. They check phasegate's SQL on static "
            "fixtures, not your data: run them in CI or after upgrading phasegate; scheduled "
            "builds leave them out, as dbt recommends for production."
        ),
    ] = False,
) -> None:
    """Run `dbt build` (models, seeds and their data tests) for the evaluation date."""
    cfg = load_config(config)
    api.build(cfg, _date(as_of, "--as-of"), full_refresh=full_refresh, select=select, unit_tests=unit_tests)
    _print_phase_summary(cfg)


@app.command()
def backfill(
    start: Annotated[str, typer.Option(help="First date to evaluate (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last date to evaluate (YYYY-MM-DD).")],
    config: ConfigOpt = None,
) -> None:
    """Build phase history day by day for past dates, so transitions exist from the first
    day. Re-running a range is idempotent: each date replaces what it had produced."""
    cfg = load_config(config)
    n = api.backfill(cfg, _date(start, "--start"), _date(end, "--end"))
    out.print(f"evaluated {n} date(s) from {start} to {end}")
    _print_phase_summary(cfg)


@app.command()
def check(config: ConfigOpt = None) -> None:
    """Run the pre-activation checks without sending: the warehouse-wide checks, and each
    sync's payload checks on the plan it would send now (planned, then rolled back). Exit 2
    if any fails; a sync that cannot be planned exits with its own code (3 settings, 4 lock)."""
    cfg = load_config(config)
    report = api.check_report(cfg)
    _print_checks(report.checks)
    _print_syncs(report.syncs, title="syncs (planned, nothing sent)")
    failed = [r.name for r in report.checks if not r.passed]
    errors = list(report.errors)
    if failed:
        errors.append(BlockedError(f"check(s) failed: {', '.join(failed)}", report.checks))
    if errors:
        worst = min(errors, key=lambda e: severity_rank(e.exit_code))
        _print_other_errors(errors, worst)
        raise worst


@app.command()
def audit(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(help="How many recent runs to list.")] = 10,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="One run (a check, activation or per-sync run id).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """List recent check and sync runs from the ledgers: when, config hash, dbt invocation,
    each check's result and numbers, overrides with their reason, counts sent and held back."""
    import json

    cfg = load_config(config)
    runs = api.audit(cfg, limit=limit, run_id=run_id)
    if as_json:
        # Plain stdout, not rich: the JSON must stay machine-readable (no wrapping or markup).
        sys.stdout.write(json.dumps(runs, default=str, indent=2) + "\n")
        return
    _print_audit(runs, detailed=run_id is not None)


@app.command()
def sync(
    config: ConfigOpt = None,
    name: Annotated[
        list[str] | None, typer.Option("--sync", help="Sync to run (repeatable); default all.")
    ] = None,
    all_syncs: Annotated[
        bool, typer.Option("--all", help="Run every configured sync (the default).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Print the plan (adds/changes/removes/events); send nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Send even if a check fails (needs --reason; recorded).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why a --force override is safe.")] = None,
    full_resync: Annotated[
        bool,
        typer.Option(
            help="Resend every customer's attributes, not only what changed (after a destination "
            "lost data or was replaced). Events already delivered are not resent."
        ),
    ] = False,
    retry_rejected: Annotated[
        bool,
        typer.Option(
            help="Also resend records the destination rejected before (after fixing the cause); "
            "otherwise a rejected record is resent only once its data changes."
        ),
    ] = False,
) -> None:
    """Check, then send phase changes to each sync's destination. Only what changed since
    the destination last acknowledged is sent; a rerun after a crash resends at most the
    batches that were in flight.

    Governance applies before anything is sent: suppressed customers and deletion requests,
    holdouts, per-channel consent and frequency caps; the summary counts what each held back."""
    cfg = load_config(config)
    report = _activate(
        cfg,
        None if all_syncs else name,
        dry_run,
        force,
        reason,
        full_resync=full_resync,
        retry_rejected=retry_rejected,
    )
    if report.exit_code != ExitCode.OK:
        raise typer.Exit(report.exit_code)


@app.command()
def run(
    config: ConfigOpt = None,
    as_of: AsOfOpt = None,
    force: Annotated[bool, typer.Option(help="Send even if a check fails (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why a --force override is safe.")] = None,
) -> None:
    """The whole cycle for schedulers: build, check, sync every configured sync."""
    cfg = load_config(config)
    api.build(cfg, _date(as_of, "--as-of"))
    report = _activate(cfg, None, False, force, reason)
    _print_phase_summary(cfg)
    if report.exit_code != ExitCode.OK:
        raise typer.Exit(report.exit_code)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Customers to generate.")] = 5_000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    backfill_days: Annotated[int, typer.Option(help="Days of phase history to backfill.")] = 14,
    data: Annotated[Path, typer.Option(help="Where the generated data goes.")] = Path("data/demo"),
    config: ConfigOpt = None,
) -> None:
    """End to end on generated data: generate (once), load, backfill phase history, check,
    sync to the local file destination, and print where everything is. Rerunning it sends
    nothing new."""
    from phasegate.demo import run_demo

    cfg = load_config(config)
    summary = run_demo(
        cfg, customers=customers, days=days, seed=seed, backfill_days=backfill_days, data_dir=data
    )
    _print_checks(summary["checks"])
    _print_syncs(summary["syncs"])
    _print_phase_summary(cfg)
    out.print("\n[bold]Where everything is[/bold]")
    for label, where in summary["outputs"].items():
        out.print(f"  {label}: {where}")


def _activate(cfg, names, dry_run, force, reason, full_resync=False, retry_rejected=False):
    try:
        report = api.activate(
            cfg,
            names,
            dry_run=dry_run,
            force=force,
            reason=reason,
            full_resync=full_resync,
            retry_rejected=retry_rejected,
        )
    except PhasegateError as exc:
        # Every sync ran; show them all, then each problem once (the raised one last, by main).
        if exc.report is not None:
            _print_checks(exc.report.checks)
            _print_syncs(exc.report.syncs)
            _print_other_errors(exc.report.errors, exc)
        elif isinstance(exc, BlockedError):
            _print_checks(exc.results)
        raise
    _print_checks(report.checks)
    _print_syncs(report.syncs)
    return report


def _print_other_errors(errors, raised) -> None:
    for e in errors:
        if e is not raised:
            err.print(f"error: {e}", highlight=False, markup=False, soft_wrap=True)


def _print_checks(results) -> None:
    table = Table(title="pre-activation checks")
    for col in ("check", "result", "observed", "allowed", "detail"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r.name,
            "[green]pass[/green]" if r.passed else "[red]FAIL[/red]",
            str(r.observed),
            str(r.allowed),
            r.message,
        )
    out.print(table)
    for r in results:
        if not r.passed and r.samples:
            out.print(f"[red]{r.name}[/red] failing rows (sample):")
            for s in r.samples[:5]:
                # Samples hold data values; square brackets in them are not rich markup.
                out.print(f"  {s}", markup=False)


def _sync_status(s) -> str:
    if s.status == "success":
        return "sent"
    if s.status == "partial":
        return f"sent, {s.rejected:,} rejected"
    if s.status == "dry_run":
        blocked = any(not c.passed for c in s.checks)
        return "would be blocked (nothing sent)" if blocked else "planned (nothing sent)"
    if s.reason or s.error:
        return f"{s.status}: {s.reason or s.error}"
    return s.status


def _print_syncs(summaries, title: str = "syncs") -> None:
    from rich.markup import escape

    table = Table(title=title)
    for col in (
        "sync",
        "status",
        "upserts",
        "removes",
        "events",
        "sent",
        "rejected",
        "blocked",
        "held back",
        "deleted",
        "output",
    ):
        table.add_column(col)
    for s in summaries:
        table.add_row(
            s.sync,
            escape(_sync_status(s)),
            f"{s.upserts:,}",
            f"{s.removes:,}",
            f"{s.events:,}",
            f"{s.sent:,}",
            f"{s.rejected:,}",
            f"{s.blocked:,}",
            ", ".join(f"{k}={v:,}" for k, v in sorted(s.held_back.items()) if v) or "0",
            f"{s.deleted:,}",
            s.output,
        )
    out.print(table)


def _print_audit(runs: list[dict], detailed: bool) -> None:
    from rich.markup import escape

    if not runs:
        out.print("no runs recorded yet")
        return
    table = Table(title="recent runs (newest first)")
    for col in ("run", "when (UTC)", "config", "dbt invocation", "checks", "overrides", "syncs"):
        table.add_column(col)
    for r in runs:
        failed = [c["check_name"] for c in r["checks"] if not c["passed"]]
        n = len(r["checks"])
        checks = f"{n - len(failed)}/{n} passed" + (f"; FAIL: {', '.join(failed)}" if failed else "")
        table.add_row(
            r["run_id"],
            str(r["started_at"])[:19],
            r["config_hash"] or "-",
            (r["dbt_invocation_id"] or "-")[:8],
            escape(checks) if not failed else f"[red]{escape(checks)}[/red]",
            escape("; ".join(o["reason"] for o in r["overrides"])) or "-",
            escape(", ".join(f"{s['sync_name']}: {s['status']}" for s in r["syncs"])) or "-",
        )
    out.print(table)

    table = Table(title="checks")
    for col in ("run", "check", "result", "observed", "allowed"):
        table.add_column(col)
    for r in runs:
        for c in r["checks"]:
            table.add_row(
                c["run_id"],
                c["check_name"],
                "[green]pass[/green]" if c["passed"] else "[red]FAIL[/red]",
                escape(str(c["observed"])),
                escape(str(c["allowed"])),
            )
    out.print(table)

    table = Table(title="sync runs")
    for col in ("run", "sync", "status", "as of", "planned", "sent", "rejected", "blocked", "held back"):
        table.add_column(col)
    for r in runs:
        for s in r["syncs"]:
            held = s.get("held_back") if isinstance(s.get("held_back"), dict) else {}
            planned = sum(s.get(k) or 0 for k in ("planned_upserts", "planned_removes", "planned_events"))
            table.add_row(
                s["run_id"],
                s["sync_name"],
                s["status"],
                str(s.get("as_of_date") or "-"),
                f"{planned:,}",
                f"{s.get('sent') or 0:,}",
                f"{s.get('rejected') or 0:,}",
                f"{s.get('blocked') or 0:,}",
                ", ".join(f"{k}={v:,}" for k, v in sorted(held.items()) if v) or "0",
            )
    out.print(table)

    if not detailed:
        return
    for r in runs:
        for c in r["checks"]:
            if c["message"]:
                out.print(f"[bold]{c['check_name']}[/bold]: {escape(c['message'])}")
            for d in (c.get("details") or [])[:5] if not c["passed"] else []:
                out.print(f"  {escape(str(d))}")
        gx = [(c["check_name"], g) for c in r["checks"] for g in c.get("gx", [])]
        if gx:
            table = Table(title="Great Expectations results")
            for col in ("check", "suite", "expectation", "column", "success", "unexpected", "observed"):
                table.add_column(col)
            for name, g in gx:
                unexpected = g.get("unexpected_count")
                table.add_row(
                    name,
                    g["suite"],
                    g["expectation"],
                    g.get("column_name") or "-",
                    "[green]yes[/green]" if g["success"] else "[red]no[/red]",
                    "-" if unexpected is None else f"{unexpected} of {g.get('element_count')}",
                    escape(str(g.get("observed_value") if g.get("observed_value") is not None else "-")),
                )
            out.print(table)


def _print_phase_summary(cfg) -> None:
    info = api.phase_summary(cfg)
    table = Table(title=f"phase sizes as of {info['as_of']}")
    for col in ("journey", "phase", "customers"):
        table.add_column(col)
    for j, p, n in info["sizes"]:
        table.add_row(j, p, f"{n:,}")
    out.print(table)
    table = Table(title="transitions in the last 30 days")
    for col in ("journey", "from", "to", "customers"):
        table.add_column(col)
    for j, f, t, n in info["transitions"]:
        table.add_row(j, f, t, f"{n:,}")
    out.print(table)
    if info["quarantined"]:
        out.print("quarantined events: " + ", ".join(f"{r}={n:,}" for r, n in info["quarantined"]))


def main() -> None:
    try:
        rc = app(standalone_mode=False)
    except PhasegateError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        # typer vendors click, so its usage errors are matched by shape, not by class.
        if type(exc).__name__ == "NoArgsIsHelpError":  # help was already shown
            sys.exit(0)
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            # Usage errors are configuration errors here; 2 means "blocked".
            sys.exit(ExitCode.CONFIG if exc.exit_code == 2 else exc.exit_code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
