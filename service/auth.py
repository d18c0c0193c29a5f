"""API keys: creation, hashing, and the bearer-token check with roles site < moderator < admin."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import sqlalchemy as sa
from flask import g, request, session

from service import ratelimit
from service.errors import abort
from service.extensions import db
from service.models import ApiKey, Site, utcnow

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
    """Revoke the key whose first characters are ``prefix``; None when none matches."""
    api_key = db.session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix[:PREFIX_LEN]))
    if api_key is not None and api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
    return api_key


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate() -> ApiKey | None:
    """The live ApiKey named by the request's bearer token, or None."""
    token = _bearer_token()
    return None if token is None else authenticate_token(token)


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


def sign_in(api_key: ApiKey) -> str:
    """Start a dashboard session for ``api_key``; returns its CSRF token.

    The cookie (signed, HttpOnly, SameSite=Strict) holds the key's id and a piece of
    its hash, never the key: revoking the key ends the session at once.
    """
    session.clear()
    session.permanent = True
    session["key_id"] = api_key.id
    session["key_check"] = api_key.key_hash[:16]
    session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def sign_out() -> None:
    """End the dashboard session."""
    session.clear()


def session_key() -> ApiKey | None:
    """The live key of the request's dashboard session, or None."""
    key_id = session.get("key_id")
    if not isinstance(key_id, int):
        return None
    api_key = db.session.get(ApiKey, key_id)
    if api_key is None or api_key.revoked_at is not None:
        return None
    if not hmac.compare_digest(api_key.key_hash[:16], str(session.get("key_check", ""))):
        return None
    return api_key


def csrf_token() -> str | None:
    """The CSRF token of the current dashboard session."""
    return session.get("csrf")


def _cookie_auth() -> ApiKey | None:
    """Session-cookie auth for the dashboard; state-changing requests need X-CSRF-Token."""
    api_key = session_key()
    if api_key is not None and request.method not in SAFE_METHODS:
        token = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(token, str(session.get("csrf", ""))):
            abort(403, "Missing or wrong X-CSRF-Token for this session.")
    return api_key


def require(role: Role, *, optional: bool = False) -> Callable:
    """View decorator: 401 without a valid key, 403 below ``role``; sets ``g.api_key``/``g.site``.

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
            g.site = api_key.site
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
