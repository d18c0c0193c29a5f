"""Fixtures for the drop-in faces: the app served over real HTTP, and real workers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from service.extensions import db
from tests.worker_helpers import WORKER_SETTINGS, WorkerProcess, wait_for


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test app behind a threaded HTTP server (clients really talk HTTP); its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A Detoxify-format checkpoint and its config dir (tests/checkpoints.py)."""
    from tests.checkpoints import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("detoxify"))


@pytest.fixture
def start_worker(app: Flask, config: dict[str, Any], tmp_path: Path):
    """Factory: ``civility worker`` on the test database and Redis prefix, ready to answer
    synchronous requests when it returns (it has announced itself)."""
    started: list[WorkerProcess] = []

    def start(*args: str, ready: bool = True, **settings: Any) -> WorkerProcess:
        merged = {
            **WORKER_SETTINGS,
            "DATABASE_URL": config["DATABASE_URL"],
            "REDIS_URL": config["REDIS_URL"],
            "REDIS_PREFIX": config["REDIS_PREFIX"],
            "INSTANCE_PATH": config["INSTANCE_PATH"],
            "SECRET_KEY": "test-secret",
            **settings,
        }
        worker = WorkerProcess(list(args), merged, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        if ready:
            redis = app.extensions["civility.redis"]
            running = sum(w.process.poll() is None for w in started)
            wait_for(
                lambda: (
                    redis.zcount(f"{config['REDIS_PREFIX']}:analyzers", time.time(), "+inf")
                    >= running
                ),
                "the worker announced itself",
                worker,
                timeout=180,  # torch loads slowly on a busy machine
            )
        return worker

    yield start
    for worker in started:
        worker.stop()


def release_database() -> None:
    """End the test's own transaction: on SQLite it holds the write lock, and the server's
    threads have sessions of their own (reading a row after a commit starts one)."""
    db.session.rollback()


def detoxify_settings(tiny_checkpoint: tuple[Path, Path], **settings: Any) -> dict[str, Any]:
    """Worker settings that load the tiny checkpoint through the real Detoxify class."""
    checkpoint, config_dir = tiny_checkpoint
    return {"SCORER": f"detoxify:{checkpoint}", "MODEL_CONFIG_DIR": config_dir, **settings}


def free_port() -> int:
    """A port nobody listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
