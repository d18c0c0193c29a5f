"""Embed tokens: the embed secret, readers' HS256 sign-in tokens, per-comment reader tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from flask import current_app

from service.errors import abort
from service.models import Site, utcnow

SECRET_PREFIX = "embsec_"
ALGORITHM = "HS256"
# A reader id a browser can never claim through a token: anonymous authors live here.
ANONYMOUS_PREFIX = "anon:"
CLAIM_MAX = 200


@dataclass(frozen=True)
class Reader:
    """Who a browser writes as: the site's user (``sso``) or a named anonymous reader."""

    ref: str
    name: str
    signed_in: bool


def new_secret() -> str:
    """A fresh embed secret: ``embsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def rotate_secret(site: Site, overlap_s: float) -> str:
    """Give ``site`` a new embed secret; the old one still verifies for ``overlap_s`` seconds."""
    secret = new_secret()
    if site.embed_secret:
        site.embed_previous_secret = site.embed_secret
        site.embed_previous_secret_expires_at = utcnow() + timedelta(seconds=overlap_s)
    site.embed_secret = secret
    return secret


def sign(site: Site, sub: str, name: str, lifetime_s: int = 600) -> str:
    """A reader token for ``site``, as a site's backend makes one (the demo signs with this)."""
    now = datetime.now(UTC)
    claims = {"sub": sub, "name": name, "iat": now, "exp": now + timedelta(seconds=lifetime_s)}
    return jwt.encode(claims, site.embed_secret, algorithm=ALGORITHM)


def _refuse(why: str) -> None:
    abort(
        401,
        f"Reader token refused: {why}.",
        headers={"WWW-Authenticate": 'Bearer realm="civility-embed", error="invalid_token"'},
    )


def _decode(token: str, secret: str) -> dict[str, Any]:
    cfg = current_app.config
    return jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        leeway=cfg["EMBED_TOKEN_LEEWAY_S"],
        options={"require": ["sub", "name", "exp"], "verify_aud": False},
    )


def _verified_claims(token: str, site: Site) -> dict[str, Any]:
    """The token's claims when the site's current (or overlapping previous) secret signed it."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        _refuse("not a JWT (expected header.payload.signature)")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        _refuse("unsigned tokens (alg: none) are not accepted; sign with HS256")
    if alg != ALGORITHM:
        _refuse(f"algorithm {alg} is not accepted; sign with HS256")
    if not site.embed_secret:
        _refuse("this site has no embed secret yet (POST /v1/site/embed-secret)")
    now = utcnow()
    previous = site.embed_previous_secret
    expires = site.embed_previous_secret_expires_at
    try:
        return _decode(token, site.embed_secret)
    except jwt.InvalidSignatureError:
        if not previous:
            _refuse("signature does not match this site's embed secret (wrong secret or site)")
    except jwt.ExpiredSignatureError:
        _refuse("expired")
    except jwt.ImmatureSignatureError:
        _refuse("not valid yet (iat or nbf is in the future)")
    except jwt.MissingRequiredClaimError as exc:
        _refuse(f"the {exc.claim} claim is required")
    except jwt.InvalidTokenError as exc:
        _refuse(f"malformed ({exc})")
    try:
        claims = _decode(token, previous)
    except jwt.InvalidSignatureError:
        _refuse("signature does not match this site's embed secret (wrong secret or site)")
    except jwt.InvalidTokenError:
        _refuse("signed with the previous embed secret and invalid")
    if expires is None or expires <= now:
        _refuse("signed with an embed secret that was rotated out (its overlap has ended)")
    return claims


def _claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > CLAIM_MAX:
        _refuse(f"the {name} claim must be a string of 1-{CLAIM_MAX} characters")
    return value.strip()


def verify(token: str, site: Site) -> Reader:
    """The signed-in reader a token names; 401 naming why for any token the site did not sign."""
    claims = _verified_claims(token, site)
    audience = claims.get("aud")
    if audience is not None:
        audiences = audience if isinstance(audience, list) else [audience]
        if str(site.id) not in [str(a) for a in audiences]:
            _refuse(f"it is for another site (aud {audience!r}, this site is {site.id})")
    exp = claims["exp"]
    if not isinstance(exp, int | float):
        _refuse("the exp claim must be a number")
    longest = current_app.config["EMBED_TOKEN_MAX_AGE_S"]
    if exp - utcnow().timestamp() > longest:
        _refuse(f"it lives too long (exp more than {longest} s ahead; make short-lived tokens)")
    sub = _claim(claims, "sub")
    if sub.startswith(ANONYMOUS_PREFIX):
        _refuse(f"sub must not start with {ANONYMOUS_PREFIX!r} (kept for anonymous readers)")
    jti = claims.get("jti")
    if jti is not None and (not isinstance(jti, str) or len(jti) > CLAIM_MAX):
        _refuse(f"the jti claim must be a string of at most {CLAIM_MAX} characters")
    return Reader(ref=sub, name=_claim(claims, "name"), signed_in=True)


def anonymous(site: Site, name: str, client_ip: str) -> Reader:
    """An anonymous reader, identified by name and IP (so limits and premod count them)."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"{site.id}|{client_ip}|{name.casefold()}".encode(), hashlib.sha256)
    return Reader(ref=ANONYMOUS_PREFIX + digest.hexdigest()[:24], name=name, signed_in=False)


def reader_token(comment_id: int) -> str:
    """The token that lets the author's browser read its own comment's status."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"reader-token|{comment_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def reader_token_matches(comment_id: int, token: str) -> bool:
    """True when ``token`` is the reader token of ``comment_id`` (constant-time)."""
    return hmac.compare_digest(reader_token(comment_id).encode(), token.encode())
