"""gunicorn settings for ``civility serve``: logs in the app's format, metrics across workers.

Loaded with ``gunicorn -c python:service.gunicorn_conf``; the command line (bind,
workers, timeouts) sets the rest.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gunicorn import util

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


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own answers (400 bad request line, 414 URI too long, 431 headers too large)
    in the API's error shape instead of gunicorn's HTML page."""
    body = json.dumps({"code": status_int, "status": reason, "message": mesg or reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# gunicorn has no setting for these answers: its workers call util.write_error, so that
# is the one name replaced (here, in the config gunicorn loads before it forks them).
util.write_error = write_json_error
