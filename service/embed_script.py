"""The embed widget's script, served at ``/embed.js``: versioned by content, cacheable, SRI-able."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, request

from service.errors import abort

SCRIPT = Path(__file__).parent / "static" / "embed" / "embed.js"
# Unversioned URLs are re-checked hourly (ETag); a ``?v=`` of the current version is
# immutable, so a site that pins it (with integrity=) never waits on us again.
SHORT_CACHE = "public, max-age=3600"
IMMUTABLE = "public, max-age=31536000, immutable"

bp = Blueprint("embed_script", __name__)


@dataclass(frozen=True)
class Script:
    """The script's bytes and what a site needs to pin them."""

    body: bytes
    version: str
    integrity: str
    gzip_bytes: int


@functools.cache
def script() -> Script:
    """The widget as served: read once per process (it changes only with a release)."""
    body = SCRIPT.read_bytes()
    digest = hashlib.sha384(body).digest()
    return Script(
        body=body,
        version=hashlib.sha256(body).hexdigest()[:12],
        integrity="sha384-" + base64.b64encode(digest).decode(),
        gzip_bytes=len(gzip.compress(body, compresslevel=9)),
    )


def snippet(base_url: str, site_id: int, article: str) -> str:
    """The HTML a site pastes where the comments go (pinned version, with integrity)."""
    current = script()
    return (
        f'<div data-civility-site="{site_id}" data-civility-article="{article}"></div>\n'
        f'<script src="{base_url}/embed.js?v={current.version}" '
        f'integrity="{current.integrity}" crossorigin="anonymous" async></script>'
    )


@bp.get("/embed.js")
def embed_js() -> Response:
    """The widget; ``?v=`` pins a version (immutable), anything else revalidates hourly."""
    current = script()
    wanted = request.args.get("v")
    if wanted is not None and wanted != current.version:
        abort(404, f"embed.js version {wanted!r} is not served here (current: {current.version}).")
    response = Response(current.body, mimetype="text/javascript")
    response.set_etag(current.version)
    response.headers["Cache-Control"] = IMMUTABLE if wanted else SHORT_CACHE
    # Scripts pinned with integrity= are fetched in CORS mode (crossorigin="anonymous").
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Civility-Embed-Version"] = current.version
    return response.make_conditional(request)


def init_app(app: Flask) -> None:
    """Serve ``/embed.js``."""
    app.register_blueprint(bp)
