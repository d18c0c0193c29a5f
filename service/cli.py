"""The ``civility`` command: Flask's commands plus sites, keys, serve and demo (JSON on stdout)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from service import create_app
from service.auth import Role, create_key, revoke_key
from service.extensions import db
from service.models import Site, utcnow


def emit(payload: dict[str, Any]) -> None:
    """Print one JSON object on stdout, for scripts."""
    click.echo(json.dumps(payload, default=str))


def create_cli_app() -> Flask:
    """The app for CLI commands; a bad setting is a one-line error, not a traceback."""
    try:
        return create_app()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(
    cls=FlaskGroup,
    create_app=create_cli_app,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
def main() -> None:
    """Civility: self-hosted comment moderation."""


@main.group()
def sites() -> None:
    """Manage sites (tenants)."""


@sites.command("create")
@click.argument("name")
@click.option("--origin", "origins", multiple=True, help="Allowed browser origin (repeatable).")
@click.option(
    "--public-reads/--no-public-reads",
    default=False,
    help="Let browsers read approved comments without a key.",
)
@with_appcontext
def sites_create(name: str, origins: tuple[str, ...], public_reads: bool) -> None:
    """Create a site and its first admin key."""
    site = Site(name=name, origins=list(origins), public_reads=public_reads)
    db.session.add(site)
    db.session.flush()
    key = create_key(site, Role.ADMIN, "admin")
    db.session.commit()
    emit({"site_id": site.id, "admin_key": key})


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--site", "site_id", type=int, required=True, help="Site id.")
@click.option("--role", type=click.Choice([r.label for r in Role]), required=True)
@click.option("--name", required=True, help="Who uses it; the actor in the audit trail.")
@with_appcontext
def keys_create(site_id: int, role: str, name: str) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    site = db.session.get(Site, site_id)
    if site is None:
        raise click.BadParameter(f"no site {site_id}", param_hint="--site")
    key = create_key(site, Role.parse(role), name)
    db.session.commit()
    emit({"key": key, "site_id": site_id, "role": role, "name": name})


@keys.command("revoke")
@click.argument("key_prefix")
@with_appcontext
def keys_revoke(key_prefix: str) -> None:
    """Revoke the key starting with KEY_PREFIX (its first 12 characters or the whole key)."""
    api_key = revoke_key(key_prefix)
    if api_key is None:
        raise click.BadParameter(f"no key starts with {key_prefix!r}", param_hint="KEY_PREFIX")
    db.session.commit()
    emit({"revoked": api_key.prefix, "revoked_at": api_key.revoked_at})


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers.")
@click.option(
    "--threads", default=None, type=int, help="Threads per worker. Default: CIVILITY_SERVE_THREADS."
)
@with_appcontext
def serve(host: str, port: int, workers: int, threads: int | None) -> None:
    """Run the API under gunicorn (replaces this process)."""
    from flask import current_app

    from service.metrics import MULTIPROC_ENV, clear_dir

    if current_app.config["METRICS_ENABLED"] and not os.environ.get(MULTIPROC_ENV):
        # gunicorn's workers are separate processes: each writes its samples here and
        # /metrics adds them up. Whoever sets the variable (scripts/run) clears it.
        metrics_dir = Path(current_app.instance_path) / "metrics"
        clear_dir(metrics_dir)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
    argv = [
        gunicorn,
        "--config",
        "python:service.gunicorn_conf",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        # Threads, not sync workers: a request waiting for a synchronous score holds one
        # thread, so many can wait while ingest and reads go on (bench/analyze.py shows it).
        "--worker-class",
        "gthread",
        "--threads",
        str(threads or current_app.config["SERVE_THREADS"]),
        "--graceful-timeout",
        "20",
        # A bulk decision over 50,000 comments takes tens of seconds on 2 cores.
        "--timeout",
        "120",
        "service:create_app()",
    ]
    os.execvp(argv[0], argv)


@main.command()
@click.option(
    "--url",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Where the API will listen, for the printed curl lines.",
)
@with_appcontext
def demo(url: str) -> None:
    """Create the demo site, keys, article and comments (idempotent); print keys and curl lines."""
    from service.demo import run_demo

    emit(run_demo(url))


@main.command()
@click.option(
    "--burst", is_flag=True, help="Exit when the stream is empty and no message is pending."
)
@click.option(
    "--name",
    "consumer",
    default=None,
    help="Consumer name in the group. Default: host-pid-random, unique per process.",
)
@with_appcontext
def worker(burst: bool, consumer: str | None) -> None:
    """Run a scoring worker: score, decide and ack comments until SIGTERM."""
    from flask import current_app

    from service.metrics import serve_own
    from workers.threads import THREAD_WAITS, apply_thread_wait

    wait = current_app.config["MODEL_THREAD_WAIT"]
    if wait not in THREAD_WAITS:
        raise click.ClickException(
            f"CIVILITY_MODEL_THREAD_WAIT must be one of {', '.join(THREAD_WAITS)}, not {wait!r}"
        )
    # Read by OpenMP when torch loads, so before the import below.
    apply_thread_wait(wait, os.environ)
    # Imported here: only the worker loads torch and the model, never the API.
    from workers.precision import PRECISIONS
    from workers.scorers import ScorerUnavailable
    from workers.worker import Worker, load_configured_scorer

    precision = current_app.config["MODEL_PRECISION"]
    if precision not in PRECISIONS:
        raise click.ClickException(
            f"CIVILITY_MODEL_PRECISION must be one of {', '.join(PRECISIONS)}, not {precision!r}"
        )
    try:
        scorer, fallback_active = load_configured_scorer(current_app.config)
    except (ScorerUnavailable, ValueError) as exc:
        raise click.ClickException(f"no scorer ({exc}); the worker cannot start") from exc
    worker = Worker(
        current_app, scorer, fallback_active=fallback_active, consumer=consumer, burst=burst
    )
    serve_own(current_app.config["METRICS_PORT"])
    sys.exit(worker.run())


@main.command()
@click.option("--burst", is_flag=True, help="Exit when no delivery is due.")
@with_appcontext
def webhooks(burst: bool) -> None:
    """Run the webhook dispatcher: send, retry and log outbox deliveries until SIGTERM."""
    from flask import current_app

    from service.metrics import serve_own
    from workers.dispatcher import run_dispatcher

    serve_own(current_app.config["METRICS_PORT"])
    try:
        status = run_dispatcher(current_app, burst=burst)
    except ValueError as exc:
        raise click.ClickException(f"{exc}; the dispatcher cannot start") from exc
    sys.exit(status)


@main.group()
def stats() -> None:
    """Maintain the daily rollups behind /v1/stats."""


@stats.command("rebuild")
@click.option("--site", "site_id", type=int, help="Only this site id (default: every site).")
@with_appcontext
def stats_rebuild(site_id: int | None) -> None:
    """Recount closed days' stats from the tables (after erasure or imports); days before
    the retention horizon, whose events may be pruned, keep their counts."""
    from flask import current_app

    from service import rollups

    if site_id is not None and db.session.get(Site, site_id) is None:
        raise click.ClickException(f"no site {site_id}")
    from service.retention import Retention

    cfg = current_app.config
    try:
        # Days whose events retention may have pruned keep their stored counts.
        horizon = Retention.from_config(cfg).events_horizon(utcnow())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    days = rollups.rebuild(site_id, cfg["STATS_ROLLUP_GRACE_S"], keep_before=horizon)
    emit({"site_id": site_id, "days": days, "kept_before": horizon})


@main.group()
def counts() -> None:
    """Maintain the counters kept beside the comments."""


@counts.command("rebuild")
@click.option("--site", "site_id", type=int, help="Only this site id (default: every site).")
@with_appcontext
def counts_rebuild(site_id: int | None) -> None:
    """Recount each comment's open reports from the reports, the status counts per day
    and language and per article from the comments, and copy each comment's scores
    into its score columns (if ever in doubt)."""
    from service.moderation import report_counts, status_counts
    from service.moderation.moderate import refill_score_columns

    if site_id is not None and db.session.get(Site, site_id) is None:
        raise click.ClickException(f"no site {site_id}")
    fixed = report_counts.rebuild(site_id)
    db.session.commit()
    rows = status_counts.rebuild(site_id)
    db.session.commit()
    refilled = refill_score_columns(site_id)
    db.session.commit()
    emit(
        {
            "site_id": site_id,
            "open_reports_fixed": fixed,
            "status_counts": rows,
            "score_columns_fixed": refilled,
        }
    )


@main.command()
@click.option("--dry-run", is_flag=True, help="Delete nothing; count what would go.")
@with_appcontext
def prune(dry_run: bool) -> None:
    """Delete what is past its retention (CIVILITY_RETAIN_*), in bounded batches."""
    from flask import current_app

    from service import retention

    try:
        settings = retention.Retention.from_config(current_app.config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    pruned = retention.prune(settings, dry_run=dry_run)
    emit({"dry_run": dry_run, "rows": pruned.rows, "rolled_up_days": pruned.rolled_up_days})


@main.command("embed-snippet")
@click.option("--site", "site_id", type=int, required=True, help="Site id.")
@click.option("--article", required=True, help="The article's ref.")
@click.option(
    "--url", default="http://127.0.0.1:8000", show_default=True, help="Where the API is served."
)
def embed_snippet(site_id: int, article: str, url: str) -> None:
    """Print the widget's HTML for one article, pinned to this version with its integrity."""
    from service.embed_script import snippet

    click.echo(snippet(url.rstrip("/"), site_id, article))
