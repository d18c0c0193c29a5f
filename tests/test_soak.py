"""The CI soak: 500 comments through the real processes while workers, Redis and more fail."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def soak():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: the soak restarts a Redis of its own")
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        yield importlib.import_module("soak")
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_comments_survive_killed_workers_dispatcher_redis_and_a_failing_receiver(soak):
    report = soak.run_soak(count=500, rate=10, chaos=soak.CI_CHAOS, drain_max=90)

    failed = {name: detail for name, (passed, detail) in report["checks"].items() if not passed}
    assert not failed, f"soak checks failed: {failed}\nevents: {report['events']}"
    assert report["worker_kills"] >= 5
    faults = {what for _, what in report["events"]}
    assert {"kill -9 dispatcher", "kill -9 Redis", "receiver answers 500"} <= faults
    # Comments that arrived while Redis was down were stored, then found by the sweeper.
    assert report["recovery"]["ingests that could not XADD (Redis down)"] > 0
    assert report["recovery"]["comments re-enqueued by the sweeper"] > 0
