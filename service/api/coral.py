"""Coral's external moderation phase: Coral POSTs each new comment, signed with the phase's
secret; Civility runs its whole policy over fresh scores and answers in Coral's shape."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, g, jsonify, request

from service.analyze import AnalyzeUnavailable, score_texts
from service.auth import Role, require
from service.dropin import site_policy
from service.errors import abort
from service.extensions import db
from service.models import Article, Author, CoralSecret, Site, utcnow
from service.moderation.policy import UnsupportedLanguage, decide
from service.moderation.states import AuthorStatus, CommentStatus, Mode

log = logging.getLogger(__name__)

blp = Blueprint("coral", __name__, url_prefix="/v1/coral")

# Policy reasons Coral can be told about (its external phase accepts these two flags).
SPAM_REASONS = frozenset({"link", "banned_word", "suspect_word"})


class _TextOf(HTMLParser):
    """The text of an HTML comment body (Coral's phase may be set to send HTML)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("br", "p", "div", "li", "blockquote"):
            self.parts.append("\n")


def plain_text(body: str) -> str:
    """The body with HTML tags removed (plain text passes through unchanged)."""
    if "<" not in body:
        return body
    parser = _TextOf()
    parser.feed(body)
    parser.close()
    return "".join(parts for parts in parser.parts).strip()


def signature_matches(header: str, raw: bytes, secrets: list[str]) -> bool:
    """True when one ``sha256=<hex>`` of the header is the HMAC of ``raw`` under a secret."""
    offered = [part.strip()[7:] for part in header.split(",") if part.strip().startswith("sha256=")]
    for secret in secrets:
        expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return True
    return False


def _secrets(site_id: int) -> tuple[list[str], list[str]]:
    """(live, expired) signing secrets of the site."""
    now = utcnow()
    rows = db.session.scalars(sa.select(CoralSecret).where(CoralSecret.site_id == site_id))
    live, expired = [], []
    for row in rows:
        (live if row.expires_at is None or row.expires_at > now else expired).append(row.secret)
    return live, expired


def _author(site_id: int, ref: str | None) -> tuple[AuthorStatus, int]:
    """The Coral author's status and approved count on this site (active and 0 when new)."""
    if not ref:
        return AuthorStatus.ACTIVE, 0
    author = db.session.scalar(
        sa.select(Author).where(Author.site_id == site_id, Author.ref == ref)
    )
    if author is None:
        return AuthorStatus.ACTIVE, 0
    status = AuthorStatus(author.status)
    if author.status_until is not None and author.status_until <= utcnow():
        status = AuthorStatus.ACTIVE
    return status, author.approved_count


def coral_answer(status: CommentStatus, reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """Coral's phase result: ``status`` and FLAG ``actions`` with Coral's reason codes."""
    codes = {reason["code"] for reason in reasons}
    actions = []
    if any("label" in reason for reason in reasons):
        actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"})
    if codes & SPAM_REASONS:
        actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"})
    if status == CommentStatus.REJECTED:
        return {"status": "REJECTED", "actions": actions}
    if status == CommentStatus.HELD:
        return {"status": "SYSTEM_WITHHELD", "actions": actions}
    # Approved: no verdict, Coral's own later phases (pre-moderation, story settings) go on.
    return {"actions": actions}


@blp.post("/sites/<int:site_id>/moderation")
def moderate(site_id: int):
    """Decide one Coral comment by the site's whole policy (Coral's external moderation)."""
    raw = request.get_data(cache=True)
    header = request.headers.get("X-Coral-Signature", "")
    live, expired = _secrets(site_id)
    if not header or (not live and not expired):
        abort(401, "A request signed by Coral (X-Coral-Signature) is required.")
    if not signature_matches(header, raw, live):
        stale = signature_matches(header, raw, expired)
        abort(401, "Signed with an expired secret." if stale else "The signature does not match.")
    try:
        payload = json.loads(raw)
        body = payload["comment"]["body"]
        if not isinstance(body, str):
            raise TypeError("comment.body")
    except (ValueError, KeyError, TypeError):
        abort(400, "Invalid body: expected Coral's request with comment.body.")
    text = plain_text(body)
    if len(text) > current_app.config["ANALYZE_MAX_CHARS"]:
        abort(400, "Invalid comment.body: too long.")
    site = db.session.get(Site, site_id)
    author = payload.get("author") or {}
    story = payload.get("story") or {}
    status, approved = _author(site_id, author.get("id") if isinstance(author, dict) else None)
    article = None
    if isinstance(story, dict) and isinstance(story.get("id"), str):
        article = db.session.scalar(
            sa.select(Article).where(Article.site_id == site_id, Article.ref == story["id"])
        )
    try:
        analysis = score_texts([text], "coral")
    except AnalyzeUnavailable as exc:
        abort(503, exc.message)
    mode = Mode(article.mode) if article is not None and article.mode else None
    # The same decision the worker makes: on the thresholds of the model that read the text;
    # a language no loaded scorer reads is held unscored (the worker never scores it), or
    # decided on the fallback scorer's scores with unsupported_language `score`.
    policy = site_policy(site, analysis.model)
    scores = analysis.scores[0]
    if not analysis.supported[0] and policy.unsupported_language == UnsupportedLanguage.HOLD:
        scores = {}
    decision = decide(
        scores,
        text,
        status,
        approved,
        policy,
        mode,
        language=analysis.languages[0],
        language_supported=analysis.supported[0],
    )
    log.info(
        "coral site %s: %s (%s)",
        site_id,
        decision.status,
        decision.reasons[0]["code"] if decision.reasons else "no reason",
    )
    return jsonify(coral_answer(decision.status, decision.reasons))


@blp.post("/secret")
@require(Role.ADMIN)
def set_secret():
    """Store the signing secret Coral shows for the phase; the one it replaces verifies for
    CORAL_SECRET_OVERLAP_S more (Coral's own rotation keeps the old one as long)."""
    payload = request.get_json(silent=True)
    secret = payload.get("secret") if isinstance(payload, dict) else None
    if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
        abort(
            422,
            "Invalid secret: Coral's signing secret, 16-200 characters.",
            errors={"json": {"secret": ["Coral's signing secret, 16-200 characters."]}},
        )
    now = utcnow()
    overlap = timedelta(seconds=current_app.config["CORAL_SECRET_OVERLAP_S"])
    current = db.session.scalars(
        sa.select(CoralSecret).where(
            CoralSecret.site_id == g.site_id,
            sa.or_(CoralSecret.expires_at.is_(None), CoralSecret.expires_at > now),
        )
    )
    replaced = 0
    for row in current:
        row.expires_at = min(row.expires_at or now + overlap, now + overlap)
        replaced += 1
    db.session.add(CoralSecret(site_id=g.site_id, secret=secret))
    db.session.commit()
    return jsonify(
        {
            "url": request.host_url.rstrip("/") + f"/v1/coral/sites/{g.site_id}/moderation",
            "replaced": replaced,
            "previous_valid_until": (now + overlap).isoformat() if replaced else None,
        }
    )
