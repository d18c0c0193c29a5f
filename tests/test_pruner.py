"""The workers' pruning: one worker a turn, slices handed on, run by the real worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from service.extensions import db
from service.models import WebhookDelivery
from tests.retention_helpers import OLD, count, delivery, event_ids, make_audit, make_endpoint
from tests.worker_helpers import WORKER_SETTINGS, WorkerProcess
from workers.pruner import Pruner


@pytest.fixture
def endpoint(site) -> int:
    return make_endpoint(site)


@pytest.fixture
def audit(site) -> dict[str, list[int]]:
    return make_audit(site)


def test_one_worker_prunes_per_interval(
    app, site, endpoint, redis_server: redis.Redis, redis_prefix
):
    lock = f"{redis_prefix}:prune"
    first = Pruner(redis_server, app.config, lock, "worker-a")
    second = Pruner(redis_server, app.config, lock, "worker-b")
    delivery(site, endpoint, "succeeded", OLD)
    assert first.run_due().rows["webhook_delivery"] == 1
    delivery(site, endpoint, "succeeded", OLD)
    assert second.run_due() is None  # pruned lately by the first: its turn lasts the interval
    assert redis_server.ttl(lock) > app.config["PRUNE_INTERVAL_S"] - 60
    assert count(WebhookDelivery) == 1


def test_a_slice_cut_short_hands_the_turn_on(app, site, endpoint, redis_server, redis_prefix):
    cfg = {**app.config, "PRUNE_BATCH": 1, "PRUNE_BUDGET_S": 0.0}
    lock = f"{redis_prefix}:prune"
    for _ in range(2):
        delivery(site, endpoint, "succeeded", OLD, attempts=0)
    pruner = Pruner(redis_server, cfg, lock, "worker-a")
    assert not pruner.run_due().finished
    assert redis_server.get(lock) is None  # any worker's next turn goes on
    assert Pruner(redis_server, cfg, lock, "worker-b").run_due().rows["webhook_delivery"] == 1


def test_the_worker_prunes_as_it_runs(app, config, site, audit, endpoint, tmp_path: Path):
    """A slice of one row a turn: the burst worker goes on turning until pruning is done."""
    delivery(site, endpoint, "succeeded", OLD)
    db.session.close()  # on SQLite an open read would hold the write lock the worker needs
    places = ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "INSTANCE_PATH")
    worker = WorkerProcess(
        ["--burst"],
        {
            **WORKER_SETTINGS,
            **{name: config[name] for name in places},
            "SECRET_KEY": "test-secret",
            "PRUNE_BATCH": 1,
            "PRUNE_BUDGET_S": 0,
        },
        tmp_path / "worker.log",
    )
    assert worker.wait(60) == 0, worker.log()
    db.session.expire_all()
    assert count(WebhookDelivery) == 0, worker.log()
    assert event_ids(audit["old"]) == set() and event_ids(audit["old_moderated"])
