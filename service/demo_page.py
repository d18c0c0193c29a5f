"""The demo article at ``/demo/``: the seed article's header, a placeholder body, the widget.

Served only when ``CIVILITY_DEMO_PAGE`` is on (``scripts/run`` turns it on): its token
endpoint signs in whoever asks as the demo reader, which no production site may allow.
It also answers loopback clients only and signs for the demo site alone.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, jsonify, render_template, request

from service import demo, embed_tokens
from service.embed_script import script
from service.errors import abort
from service.extensions import db
from service.models import Article, Site

bp = Blueprint(
    "demo_page",
    __name__,
    url_prefix="/demo",
    static_folder="static/demo",
    static_url_path="/static",
)
READER = {"sub": "demo-reader", "name": "Demo reader"}
TOKEN_LIFETIME_S = 600
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _demo_site() -> Site:
    site = db.session.scalar(sa.select(Site).where(Site.name == demo.SITE_NAME))
    if site is None:
        abort(404, "No demo site: run `civility demo` (scripts/run does) first.")
    return site


def _loopback_only() -> None:
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        abort(403, "The demo answers this machine only.")


@bp.get("/")
def article():
    """The demo article, with the comment widget under it."""
    _loopback_only()
    site = _demo_site()
    row = db.session.scalar(
        sa.select(Article).where(Article.site_id == site.id, Article.ref == demo.ARTICLE_REF)
    )
    title = (row.title if row else None) or demo.ARTICLE["title"]
    published = (row.published_at if row else None) or datetime.fromisoformat(
        demo.ARTICLE["published_at"]
    )
    response = Response(
        render_template(
            "demo/article.html",
            title=title,
            published=published,
            byline=demo.BYLINE,
            site_id=site.id,
            article_ref=demo.ARTICLE_REF,
            script_version=script().version,
        )
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/token")
def token():
    """A short-lived reader token for the demo reader, signed with the demo's embed secret."""
    _loopback_only()
    site = _demo_site()
    if not site.embed_secret:
        abort(409, "The demo site has no embed secret: run `civility demo` again.")
    signed = embed_tokens.sign(site, READER["sub"], READER["name"], TOKEN_LIFETIME_S)
    response = jsonify(token=signed, expires_in=TOKEN_LIFETIME_S)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Serve the demo article when CIVILITY_DEMO_PAGE is on; otherwise /demo/ does not exist."""
    if app.config["DEMO_PAGE"]:
        app.register_blueprint(bp)
