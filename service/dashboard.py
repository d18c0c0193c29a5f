"""The moderators' dashboard: sign-in, sign-out and the page that works the queue over /v1."""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for

from service import auth, outbox, ratelimit
from service.auth import Role
from service.errors import abort
from service.extensions import db
from service.labels import scorer_of
from service.models import ApiKey
from service.moderation.moderate import REASON_CODES
from service.moderation.policy import LABELS, shown, thresholds

log = logging.getLogger(__name__)

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    static_folder="static/dashboard",
    static_url_path="/static",
)
# No inline script or style, nothing from elsewhere, never framed: comment bodies are
# hostile input, and this page holds a moderator's session.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
POLL_MS = 5000


def init_app(app: Flask) -> None:
    """Register the dashboard and the security headers of its responses."""
    app.register_blueprint(bp)

    @app.after_request
    def _dashboard_headers(response: Response) -> Response:
        if request.path == "/dashboard" or request.path.startswith("/dashboard/"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if not request.path.startswith("/dashboard/static/"):
                response.headers["Cache-Control"] = "no-store"
        return response


def _moderator_session() -> ApiKey | None:
    """The signed-in key when it may moderate; site keys never get a session, but check."""
    api_key = auth.session_key()
    if api_key is None or Role.parse(api_key.role) < Role.MODERATOR:
        return None
    return api_key


def page_config(api_key: ApiKey) -> dict[str, Any]:
    """What the dashboard's script needs to start: who is signed in, the CSRF token, thresholds.

    Thresholds are here because moderators cannot read GET /v1/site (admin only), yet
    every score bar marks them.
    """
    site = api_key.site
    hold_at, reject_at = thresholds(site.hold_at, site.reject_at, scorer_of(site.id))
    return {
        "role": api_key.role,
        "key_name": api_key.name,
        "site_id": site.id,
        "site_name": site.name,
        "csrf_token": auth.csrf_token(),
        "labels": list(LABELS),
        "hold_at": shown(hold_at),
        "reject_at": shown(reject_at),
        "reason_codes": list(REASON_CODES),
        "event_types": list(outbox.EVENT_TYPES),
        "poll_ms": POLL_MS,
        "sign_out_url": url_for("dashboard.sign_out"),
        "session_url": url_for("dashboard.session_info"),
    }


@bp.get("")
def index():
    """The dashboard when signed in, else the sign-in page."""
    api_key = _moderator_session()
    if api_key is None:
        return render_template("dashboard/sign_in.html")
    return render_template("dashboard/app.html", page=page_config(api_key))


@bp.get("/")
def index_slash():
    """``/dashboard/`` is ``/dashboard``."""
    return redirect(url_for("dashboard.index"), 308)


def _same_origin() -> None:
    """403 for a browser request sent from another site (defence in depth for sign-in)."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        abort(403, "Cross-site request refused.")


@bp.post("/sign-in")
def sign_in():
    """Start a session for a moderator or admin key sent as JSON ``{"key": …}``.

    JSON only (the app refuses form bodies with 415), which also means a page on
    another site cannot sign a moderator into someone else's account.
    """
    _same_origin()
    ip = ratelimit.client_ip()
    ratelimit.check("sign_in_ip", ip)
    ratelimit.refuse_if_spent("failed_key_ip", ip)
    fields = request.get_json(silent=True)
    key = fields.get("key") if isinstance(fields, dict) else None
    if not isinstance(key, str) or not key.strip():
        abort(422, "Invalid key: paste your API key.", errors={"json": {"key": ["Required."]}})
    api_key = auth.authenticate_token(key.strip())
    if api_key is None:
        log.warning("dashboard: sign-in refused from %s (unknown key)", ip)
        ratelimit.check("failed_key_ip", ip)
        abort(401, "That key is not valid, or it was revoked.")
    if Role.parse(api_key.role) < Role.MODERATOR:
        log.warning("dashboard: sign-in refused for %s (role %s)", api_key.name, api_key.role)
        abort(403, "Site keys cannot sign in: use a moderator or admin key.")
    csrf = auth.sign_in(api_key)
    db.session.commit()
    log.info("dashboard: %s signed in (%s)", api_key.name, api_key.role)
    return {"redirect": url_for("dashboard.index"), "csrf_token": csrf}


@bp.post("/sign-out")
def sign_out():
    """End the session; needs the session's X-CSRF-Token like every write."""
    if auth.session_key() is not None:
        token = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(token, str(auth.csrf_token() or "")):
            abort(403, "Missing or wrong X-CSRF-Token for this session.")
    auth.sign_out()
    db.session.commit()
    return "", 204


@bp.get("/session")
def session_info():
    """The signed-in key's role, name, site and CSRF token (401 when signed out)."""
    api_key = _moderator_session()
    if api_key is None:
        abort(401, "Not signed in.")
    return page_config(api_key)
