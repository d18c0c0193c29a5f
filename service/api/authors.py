"""Authors: a moderator's view of one site user: status (trusted, premod, banned) and notes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service import erasure
from service.api.common import CleanString, DateTimeIn
from service.api.schemas import StatusCounts
from service.auth import Role, actor_name, require
from service.errors import abort, field_error
from service.extensions import db
from service.models import Author, Comment, utcnow
from service.moderation import authors, bulk
from service.moderation.authors import SUSPENSIONS
from service.moderation.states import AuthorStatus, CommentStatus

blp = Blueprint(
    "authors",
    __name__,
    url_prefix="/v1/authors",
    description="Authors (the site's users): status, bans and moderator notes.",
)
SECURITY = [{"bearerAuth": ["moderator"]}]  # the least role allowed (OpenAPI 3.1 roles)
RECENT = 20


class AuthorPatch(ma.Schema):
    status = ma.fields.String(
        validate=ma.validate.OneOf([s.value for s in AuthorStatus]),
        metadata={
            "description": "`active`, `trusted` (approved unless a reject rule fires), "
            "`premod` (always held) or `banned` (always rejected)."
        },
    )
    until = DateTimeIn(
        allow_none=True,
        metadata={
            "description": "When a `premod` or `banned` status ends by itself (future, "
            "ISO 8601). Omitted with a new status: permanent."
        },
    )
    note = CleanString(
        multiline=True,
        validate=ma.validate.Length(min=1, max=2000),
        metadata={
            "description": "Appended to the author's notes with the time and your key's "
            "name; notes are never replaced."
        },
    )
    reject_existing = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "With status `banned`: also reject the author's pending, held "
            "and approved comments, as one bulk action (undo with "
            "POST /v1/decisions/bulk/{bulk_id}/undo)."
        },
    )


class RecentComment(ma.Schema):
    id = ma.fields.Integer()
    article = ma.fields.String(attribute="article.ref")
    body = ma.fields.String()
    status = ma.fields.String()
    max_score = ma.fields.Float(allow_none=True)
    reasons = ma.fields.List(ma.fields.Dict())
    created_at = ma.fields.AwareDateTime()
    decided_at = ma.fields.AwareDateTime(allow_none=True)
    decided_by = ma.fields.String(allow_none=True)


class BulkSummary(ma.Schema):
    bulk_id = ma.fields.String()
    matched = ma.fields.Integer()
    changed = ma.fields.Integer()


class AuthorDetail(ma.Schema):
    id = ma.fields.String(metadata={"description": "The site's user id."})
    name = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"description": "The status in force now."})
    until = ma.fields.AwareDateTime(allow_none=True)
    notes = ma.fields.String(allow_none=True)
    approved_count = ma.fields.Integer()
    rejected_count = ma.fields.Integer()
    counts = ma.fields.Nested(StatusCounts, metadata={"description": "Comments by status."})
    created_at = ma.fields.AwareDateTime()
    recent_comments = ma.fields.List(
        ma.fields.Nested(RecentComment), metadata={"description": f"The {RECENT} newest."}
    )
    bulk = ma.fields.Nested(
        BulkSummary, metadata={"description": "The bulk rejection, with `reject_existing`."}
    )


def author_or_404(ref: str, *, lock: bool = False) -> Author:
    """The current site's author ``ref``; 404 for unknown and other sites' authors alike."""
    if lock:
        author = authors.for_update(g.site.id, ref)
    else:
        author = db.session.scalar(
            sa.select(Author).where(Author.site_id == g.site.id, Author.ref == ref)
        )
    if author is None:
        abort(404, f"No author {ref!r} on this site.")
    return author


def render(author: Author) -> dict[str, Any]:
    """The author as AuthorDetail expects it, with counts and recent comments."""
    counts = {status.value: 0 for status in CommentStatus}
    counts.update(
        db.session.execute(
            sa.select(Comment.status, sa.func.count())
            .where(Comment.author_id == author.id)
            .group_by(Comment.status)
        ).all()
    )
    recent = db.session.scalars(
        sa.select(Comment)
        .where(Comment.author_id == author.id)
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(RECENT)
    ).all()
    return {
        "id": author.ref,
        "name": author.name,
        "status": authors.status_of(author),
        "until": author.status_until,
        "notes": author.notes,
        "approved_count": author.approved_count,
        "rejected_count": author.rejected_count,
        "counts": counts,
        "created_at": author.created_at,
        "recent_comments": recent,
    }


def _new_status(author: Author, fields: dict[str, Any], now: datetime) -> tuple[str, Any]:
    """The (status, until) a PATCH asks for; 422 naming the field that is wrong."""
    status = fields.get("status", author.status)
    # A new status without `until` is permanent; otherwise the current end stands.
    until = fields.get("until", None if "status" in fields else author.status_until)
    if until is not None and "until" in fields:
        if status not in SUSPENSIONS:
            field_error("until", "Only with status premod or banned.")
        if until <= now:
            field_error("until", "Must be in the future.")
    if fields["reject_existing"] and status != AuthorStatus.BANNED:
        field_error("reject_existing", "Only with status banned.")
    return status, until


class ErasureOut(ma.Schema):
    author = ma.fields.String(metadata={"description": "The author's id (kept: the site's own)."})
    erased_at = ma.fields.AwareDateTime()
    comments = ma.fields.Integer(metadata={"description": "Comments erased by this call."})
    deliveries = ma.fields.Integer(
        metadata={"description": "Stored webhook payloads rewritten by this call."}
    )


@blp.route("/<ref>")
class AuthorResource(MethodView):
    @blp.doc(security=SECURITY)
    @require(Role.MODERATOR)
    @blp.response(200, AuthorDetail)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, ref: str):
        """Read an author: status, notes, counts and recent comments."""
        author = author_or_404(ref)
        if authors.normalise(author, utcnow()):
            db.session.commit()
        return render(author)

    @blp.doc(security=SECURITY)
    @require(Role.MODERATOR)
    @blp.arguments(AuthorPatch)
    @blp.response(200, AuthorDetail)
    def patch(self, fields: dict, ref: str):
        """Set an author's status (optionally until a time), add a note, ban and reject.

        An author the site has not seen yet is created, so a known spammer can be banned
        before their first comment.
        """
        # Unknown authors are made: moderators ban known spammers before they comment.
        author = authors.for_update(g.site.id, ref, create=True)
        now = utcnow()
        actor = actor_name()
        authors.normalise(author, now)
        status, until = _new_status(author, fields, now)
        reject = fields["reject_existing"]
        matched = authors.live_comments(author).count() if reject else 0
        limit = current_app.config["BULK_MAX"]
        if matched > limit:
            abort(
                422,
                f"Invalid reject_existing: {matched} comments, more than the bulk limit "
                f"({limit}); reject them with POST /v1/decisions/bulk in parts.",
                errors={"json": {"reject_existing": [f"More than {limit} comments."]}},
                matched=matched,
            )
        bulk_id = bulk.new_id() if reject else None
        authors.change(
            author,
            status,
            until,
            actor=actor,
            now=now,
            note=fields.get("note"),
            announce_ban=fields.get("status") == AuthorStatus.BANNED,
            bulk_id=bulk_id,
        )
        # The ban is in force (for new comments too) before the old ones are rejected.
        db.session.commit()
        out_bulk = None
        if bulk_id is not None:
            action = authors.reject_existing(
                author,
                actor=actor,
                matched=matched,
                chunk_size=current_app.config["BULK_CHUNK_SIZE"],
                bulk_id=bulk_id,
                note=fields.get("note"),
            )
            out_bulk = {"bulk_id": action.id, "matched": action.matched, "changed": action.changed}
        out = render(author)
        if out_bulk is not None:
            out["bulk"] = out_bulk
        return out

    @blp.doc(security=[{"bearerAuth": ["admin"]}])
    @require(Role.ADMIN)
    @blp.response(200, ErasureOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, ref: str):
        """Erase an author (right to be forgotten): bodies, name and notes; audit kept.

        Comments keep their ids, times and history; their bodies become `[erased]` and they
        are deleted; stored webhook payloads are rewritten; `author.erased` is emitted.
        Idempotent: again, it erases only what arrived since.
        """
        author = author_or_404(ref, lock=True)
        done = erasure.erase(author, actor_name())
        db.session.commit()
        return done
