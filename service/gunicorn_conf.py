"""gunicorn settings for ``civility serve``: logs in the app's format, metrics across workers.

Loaded with ``gunicorn -c python:service.gunicorn_conf``; the command line (bind,
workers, timeouts) sets the rest.
"""

from __future__ import annotations

import os
from typing import Any

from service.logs import ACCESS_LOG_FORMAT, gunicorn_config

accesslog = "-"
# gunicorn's control socket (recent versions) is one path per user, $HOME/.gunicorn:
# unused here, and two instances on one host would take it from each other.
control_socket_disable = True
# Path without query string, no headers, no Referer: nothing that can carry a key.
access_log_format = ACCESS_LOG_FORMAT
logconfig_dict = gunicorn_config(
    os.environ.get("CIVILITY_LOG_FORMAT", "text"),
    os.environ.get("CIVILITY_LOG_LEVEL", "INFO").upper(),
)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: drop its live samples from the shared metrics directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
