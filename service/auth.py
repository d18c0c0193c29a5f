"""API keys: creation, hashing, and the bearer-token check with roles site < moderator < admin."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g, request, session
from flask.ctx import _AppCtxGlobals

from service import ratelimit
from service.errors import abort
from service.extensions import db
from service.models import ApiKey, DashboardSession, Site, utcnow

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_PREFIX = "civ_"
PREFIX_LEN = 12  # "civ_" + 8 random characters: shown in listings, used for lookup


class Role(IntEnum):
    SITE = 1
    MODERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        return cls[value.upper()]


def hash_key(key: str) -> str:
    """SHA-256 of the key: keys are 256-bit random, so a slow hash adds nothing."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(site: Site, role: Role, name: str) -> str:
    """Store a new key for ``site`` and return it; this is the only time it is visible."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    db.session.add(
        ApiKey(
            site=site, role=role.label, name=name, prefix=key[:PREFIX_LEN], key_hash=hash_key(key)
        )
    )
    return key


def revoke_key(prefix: str) -> ApiKey | None:
    """Revoke the key whose first characters are ``prefix``; None when none matches.

    This process forgets the key at once; other API processes after API_KEY_CACHE_S.
    """
    api_key = db.session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix[:PREFIX_LEN]))
    if api_key is not None and api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
    if current_app and "civility.key_cache" in current_app.extensions:
        current_app.extensions["civility.key_cache"].forget(prefix[:PREFIX_LEN])
    return api_key


@dataclass(frozen=True)
class Caller:
    """The key a request authenticated with: what the views, audit and rate limits need."""

    key_id: int
    site_id: int
    role: str
    name: str
    prefix: str

    @classmethod
    def of(cls, api_key: ApiKey) -> Caller:
        return cls(api_key.id, api_key.site_id, api_key.role, api_key.name, api_key.prefix)


class KeyCache:
    """Bearer tokens this process verified in the last ``ttl`` seconds, by their hash.

    Saves the key lookup on almost every request; the price is that a key revoked by
    another process (``civility keys revoke``) still works here for up to ``ttl``.
    Past ``max_entries`` keys the cache starts over, so memory stays bounded.
    """

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.entries: dict[str, tuple[float, Caller]] = {}

    def get(self, token_hash: str) -> Caller | None:
        entry = self.entries.get(token_hash)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self.entries.pop(token_hash, None)
            return None
        return entry[1]

    def put(self, token_hash: str, caller: Caller) -> None:
        if self.ttl <= 0 or self.max_entries <= 0:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[token_hash] = (time.monotonic() + self.ttl, caller)

    def forget(self, prefix: str) -> None:
        # A copy of the items, and pop: safe beside another thread of a threaded server.
        for token_hash, (_, caller) in list(self.entries.items()):
            if caller.prefix == prefix:
                self.entries.pop(token_hash, None)


class RequestGlobals(_AppCtxGlobals):
    """Flask's ``g``, where ``g.site`` is read from the database on first use.

    A key found in the cache knows only its site's id (``g.site_id``), and most requests
    need nothing else of the site: those run no query for it.
    """

    def __getattr__(self, name: str) -> Any:
        if name == "site" and self.__dict__.get("site_id") is not None:
            site = db.session.get(Site, self.__dict__["site_id"])
            self.__dict__["site"] = site
            return site
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "site":
            self.__dict__["site_id"] = None if value is None else value.id

    def get(self, name: str, default: Any = None) -> Any:
        if name == "site" and "site" not in self.__dict__:
            return getattr(self, "site", default)
        return super().get(name, default)

    def defer_site(self, site_id: int) -> None:
        """Make ``site_id`` the request's site, read when ``g.site`` is first used."""
        self.__dict__.pop("site", None)
        self.__dict__["site_id"] = site_id


def init_app(app: Flask) -> None:
    """Give the app its key cache and the ``g`` that loads ``g.site`` lazily."""
    app.app_ctx_globals_class = RequestGlobals
    app.extensions["civility.key_cache"] = KeyCache(
        app.config["API_KEY_CACHE_S"], app.config["API_KEY_CACHE_MAX"]
    )


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate() -> Caller | None:
    """The live key named by the request's bearer token, or None; cached (KeyCache)."""
    token = _bearer_token()
    if token is None:
        return None
    cache: KeyCache = current_app.extensions["civility.key_cache"]
    token_hash = hash_key(token)
    caller = cache.get(token_hash)
    if caller is None:
        # Guessing keys costs a lookup each: an IP that failed too often gets no more.
        ip = ratelimit.client_ip()
        ratelimit.refuse_if_spent("failed_key_ip", ip)
        api_key = authenticate_token(token)
        if api_key is None:
            ratelimit.check("failed_key_ip", ip)
            return None
        caller = Caller.of(api_key)
        cache.put(token_hash, caller)
    return caller


def authenticate_token(token: str) -> ApiKey | None:
    """The live ApiKey for ``token``, or None; the hash comparison is constant-time."""
    if not token.startswith(KEY_PREFIX) or len(token) > 100:
        return None
    api_key = db.session.scalar(sa.select(ApiKey).where(ApiKey.prefix == token[:PREFIX_LEN]))
    if api_key is None or api_key.revoked_at is not None:
        return None
    if not hmac.compare_digest(api_key.key_hash, hash_key(token)):
        return None
    return api_key


# How stale a session's last_seen_at may get: one write a minute per session, not per request.
SEEN_EVERY_S = 60
SESSION_ENVIRON = "civility.dashboard_session"


def sign_in(api_key: ApiKey) -> str:
    """Start a dashboard session for ``api_key``; returns its CSRF token (the caller commits).

    The cookie (signed, HttpOnly, SameSite=Strict) holds only a random token; the
    DashboardSession row it names is what makes it valid, so ending the row ends the
    session wherever the cookie is replayed. The key itself never leaves the database.
    """
    session.clear()
    session.permanent = True
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = DashboardSession(
        token_hash=hash_key(token),
        site_id=api_key.site_id,
        key_id=api_key.id,
        csrf=secrets.token_urlsafe(32),
        ip=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:300] or None,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=current_app.config["SESSION_HOURS"]),
    )
    db.session.add(row)
    session["sid"] = token
    request.environ[SESSION_ENVIRON] = row
    return row.csrf


def current_session() -> DashboardSession | None:
    """The live DashboardSession the request's cookie names, or None (read once a request)."""
    # Kept on the request, not on g: an app context (and its g) can outlive one request.
    if SESSION_ENVIRON in request.environ:
        return request.environ[SESSION_ENVIRON]
    token = session.get("sid")
    row = None
    if isinstance(token, str) and token:
        row = db.session.scalar(
            sa.select(DashboardSession).where(DashboardSession.token_hash == hash_key(token))
        )
        now = utcnow()
        if not _live(row, now):
            row = None
        elif (now - row.last_seen_at).total_seconds() > SEEN_EVERY_S:
            db.session.execute(
                sa.update(DashboardSession)
                .where(DashboardSession.id == row.id)
                .values(last_seen_at=now)
            )
            db.session.commit()  # its own transaction: reads commit nothing else
    request.environ[SESSION_ENVIRON] = row
    return row


def _live(row: DashboardSession | None, now: datetime) -> bool:
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return False
    return row.api_key.revoked_at is None


def sign_out(ended_by: str = "sign-out") -> None:
    """End the request's dashboard session everywhere (the caller commits)."""
    row = current_session()
    if row is not None:
        row.ended_at = utcnow()
        row.ended_by = ended_by
    request.environ[SESSION_ENVIRON] = None
    session.clear()


def end_sessions(key_id: int, ended_by: str) -> int:
    """End every live dashboard session of key ``key_id``; how many (the caller commits)."""
    result = db.session.execute(
        sa.update(DashboardSession)
        .where(DashboardSession.key_id == key_id, DashboardSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_by=ended_by)
    )
    return result.rowcount


def session_key() -> ApiKey | None:
    """The live key of the request's dashboard session, or None."""
    row = current_session()
    return None if row is None else row.api_key


def csrf_token() -> str | None:
    """The CSRF token of the current dashboard session."""
    row = current_session()
    return None if row is None else row.csrf


def _cookie_auth() -> Caller | None:
    """Session-cookie auth for the dashboard; state-changing requests need X-CSRF-Token."""
    api_key = session_key()
    if api_key is None:
        return None
    if request.method not in SAFE_METHODS:
        token = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(token, str(csrf_token() or "")):
            abort(403, "Missing or wrong X-CSRF-Token for this session.")
    g.site = api_key.site
    return Caller.of(api_key)


def require(role: Role, *, optional: bool = False) -> Callable:
    """View decorator: 401 without a valid key, 403 below ``role``; sets ``g.api_key`` (a
    Caller), ``g.site_id`` and ``g.site`` (loaded on first use).

    With ``optional``, a request without any Authorization header passes with
    ``g.api_key = None`` (public reads); a bad key is still a 401. Without an
    Authorization header, a dashboard session cookie authenticates too.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.api_key = None
            g.site = None
            if "Authorization" in request.headers:
                api_key = authenticate()
            elif optional:
                return view(*args, **kwargs)
            else:
                api_key = _cookie_auth()
            if api_key is None:
                abort(
                    401,
                    "A valid API key is required: Authorization: Bearer <key>.",
                    headers={"WWW-Authenticate": 'Bearer realm="civility"'},
                )
            ratelimit.check("key", api_key.prefix)
            if Role.parse(api_key.role) < role:
                abort(
                    403,
                    f"This needs a key with role {role.label} or above; this key's role is "
                    f"{api_key.role}.",
                )
            g.api_key = api_key
            if g.site is None:  # a bearer key: the cookie's key has loaded its site
                g.defer_site(api_key.site_id)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_role() -> Role | None:
    """The role of the request's key (None for an anonymous public read)."""
    api_key = g.get("api_key")
    return None if api_key is None else Role.parse(api_key.role)


def actor_name() -> str:
    """The audit-trail actor of the current request: the key's name."""
    return g.api_key.name
