"""Comments: submit (202, scored later), read, delete, report; public reads of approved ones."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from service import logs, ratelimit
from service.api import cursor
from service.api.common import (
    REF_PARAM,
    CleanString,
    Id,
    PageArgs,
    article_or_404,
    check_ref,
    comment_or_404,
    is_blank,
    page_size,
)
from service.api.schemas import ReportOut
from service.auth import Role, actor_name, current_role, require
from service.errors import abort
from service.extensions import db
from service.models import Comment, Site
from service.moderation import reports
from service.moderation import submit as submission
from service.moderation.locks import locked
from service.moderation.moderate import moderate
from service.moderation.states import CommentStatus
from service.overlay import Overlay

blp = Blueprint(
    "comments", __name__, url_prefix="/v1", description="Submit, read, delete and report comments."
)
SECURITY = [{"bearerAuth": ["site"]}]  # the least role allowed (OpenAPI 3.1 roles)
IDEMPOTENCY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


class AuthorIn(ma.Schema):
    id = CleanString(
        required=True,
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "The site's own user id."},
    )
    name = CleanString(
        allow_none=True,
        validate=ma.validate.Length(max=200),
        metadata={"description": "Display name."},
    )


class CommentIn(ma.Schema):
    body = CleanString(
        required=True,
        multiline=True,
        metadata={
            "description": "Plain text, 1-10,000 characters after NFC (CIVILITY_MAX_BODY_CHARS)."
        },
    )
    author = ma.fields.Nested(AuthorIn, required=True)
    parent_id = Id(
        strict=True, allow_none=True, metadata={"description": "A comment of the same article."}
    )
    client_ip = ma.fields.IP(
        allow_none=True, metadata={"description": "The reader's IP, for per-IP rate limits."}
    )
    metadata = ma.fields.Dict(
        keys=ma.fields.String(),
        allow_none=True,
        metadata={
            "description": "Free-form client data, stored as is (CIVILITY_MAX_METADATA_BYTES)."
        },
    )

    @ma.validates("body")
    def _body(self, value: str, **kwargs: Any) -> None:
        if is_blank(value):
            raise ma.ValidationError("Must not be empty, whitespace or invisible characters.")
        limit = current_app.config["MAX_BODY_CHARS"]
        if len(value) > limit:
            raise ma.ValidationError(f"At most {limit} characters; this has {len(value)}.")

    @ma.validates("metadata")
    def _metadata(self, value: dict | None, **kwargs: Any) -> None:
        limit = current_app.config["MAX_METADATA_BYTES"]
        if value is not None and len(json.dumps(value)) > limit:
            raise ma.ValidationError(f"At most {limit} bytes of JSON.")


class AuthorOut(ma.Schema):
    id = ma.fields.String(attribute="ref")
    name = ma.fields.String(allow_none=True)


class SiteCommentOut(ma.Schema):
    """A comment as a site key sees it."""

    id = ma.fields.Integer()
    article = ma.fields.String(attribute="article.ref", metadata={"description": "Article ref."})
    parent_id = ma.fields.Integer(allow_none=True)
    author = ma.fields.Nested(AuthorOut)
    body = ma.fields.String()
    status = ma.fields.String(
        metadata={"description": "pending, approved, held, rejected or deleted."}
    )
    created_at = ma.fields.AwareDateTime()
    decided_at = ma.fields.AwareDateTime(allow_none=True)


class CommentOut(SiteCommentOut):
    """A comment; its fields past SiteCommentOut's for moderator and admin keys only."""

    scores = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(), allow_none=True)
    model = ma.fields.String(allow_none=True)
    language = ma.fields.String(
        allow_none=True,
        metadata={"description": "The language it was read as (ISO 639-1 code); null: not yet."},
    )
    language_confidence = ma.fields.Float(
        allow_none=True, metadata={"description": "The language detector's probability, 0-1."}
    )
    reasons = ma.fields.List(ma.fields.Dict())
    decided_by = ma.fields.String(allow_none=True)
    scored_at = ma.fields.AwareDateTime(allow_none=True)
    client_ip = ma.fields.String(allow_none=True)
    metadata = ma.fields.Dict(attribute="meta", allow_none=True)


# Answered as missing (so left out) to other keys: attributes named as CommentOut reads them.
HIDDEN_FROM_SITES = {
    field.attribute or name: ma.missing
    for name, field in CommentOut().fields.items()
    if name not in SiteCommentOut().fields
}


class PublicComment(ma.Schema):
    id = ma.fields.Integer()
    parent_id = ma.fields.Integer(allow_none=True)
    author = ma.fields.Nested(AuthorOut)
    body = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class PublicPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PublicComment))
    next_cursor = ma.fields.String(
        allow_none=True, metadata={"description": "Pass as `cursor`; null at the end."}
    )


class PublicArgs(PageArgs):
    order = ma.fields.String(
        load_default="oldest", validate=ma.validate.OneOf(["oldest", "newest"])
    )
    site = Id(metadata={"description": "Site id, for reads without a key."})


class ReportIn(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.OneOf(reports.REPORT_REASONS))
    reporter_id = CleanString(
        allow_none=True,
        validate=ma.validate.Length(max=200),
        metadata={"description": "The site's id of the reporting reader."},
    )
    note = CleanString(allow_none=True, multiline=True, validate=ma.validate.Length(max=2000))


def comment_view(comment: Comment) -> Comment | Overlay:
    """The comment as the current key's role may see it."""
    role = current_role()
    if role is not None and role >= Role.MODERATOR:
        return comment
    return Overlay(comment, **HIDDEN_FROM_SITES)


def _idempotency_key() -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is not None and not IDEMPOTENCY_RE.match(value):
        abort(
            422,
            "Invalid Idempotency-Key: 1-255 printable ASCII characters.",
            errors={"headers": {"Idempotency-Key": ["1-255 printable ASCII characters."]}},
        )
    return value


def _request_hash(ref: str, fields: dict) -> str:
    canonical = json.dumps({"article": ref, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(site_id: int, idem_key: str, request_hash: str) -> Comment | None:
    """The comment an earlier request with this Idempotency-Key created; 409 if it differs."""
    earlier = (
        db.session.connection()
        .execute(_IDEMPOTENT, {"site_id": site_id, "idempotency_key": idem_key})
        .first()
    )
    if earlier is None:
        return None
    if earlier.request_hash != request_hash:
        abort(
            409,
            "Idempotency-Key was already used with a different request.",
            errors={"headers": {"Idempotency-Key": ["Already used with another body."]}},
        )
    return db.session.get(Comment, earlier.id)


_IDEMPOTENT = sa.select(Comment.id, Comment.request_hash).where(
    Comment.site_id == sa.bindparam("site_id"),
    Comment.idempotency_key == sa.bindparam("idempotency_key"),
)


@blp.route("/articles/<ref>/comments", parameters=[REF_PARAM])
class ArticleComments(MethodView):
    @blp.doc(security=SECURITY)
    @require(Role.SITE)
    @blp.arguments(CommentIn())  # an instance: webargs instantiates a class per request
    @blp.response(202, CommentOut)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict, ref: str):
        """Submit a comment: stored as pending, answered 202, scored by a worker."""
        site_id = g.site_id
        idem_key = _idempotency_key()
        request_hash = _request_hash(ref, fields)
        if idem_key is not None:
            # A retry gets its original answer, whatever the limits say now.
            earlier = _replay(site_id, idem_key, request_hash)
            if earlier is not None:
                return comment_view(earlier)
        ratelimit.check("author", f"{site_id}:{fields['author']['id']}")
        if fields.get("client_ip"):
            ratelimit.check("ip", str(fields["client_ip"]))

        article = submission.article_for_submit(
            site_id, check_ref(ref), lazy=lambda: g.site.lazy_articles
        )
        author_in = fields["author"]
        author = submission.author_for_submit(site_id, author_in["id"], author_in.get("name"))
        try:
            comment = submission.submit(
                site_id,
                article,
                author,
                body=fields["body"],
                actor=actor_name(),
                parent_id=fields.get("parent_id"),
                client_ip=str(fields["client_ip"]) if fields.get("client_ip") else None,
                meta=fields.get("metadata"),
                idempotency_key=idem_key,
                request_hash=request_hash,
                request_id=logs.current_request_id(),
            )
        except sa.exc.IntegrityError:
            # A concurrent request with the same Idempotency-Key won the insert.
            earlier = _replay(site_id, idem_key, request_hash) if idem_key else None
            if earlier is None:
                raise
            return comment_view(earlier)
        return comment_view(comment)

    @blp.doc(security=[{}, *SECURITY])
    @require(Role.SITE, optional=True)
    @blp.arguments(PublicArgs, location="query")
    @blp.etag
    @blp.response(200, PublicPage)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict, ref: str):
        """List approved comments; with a key, or without one where the site allows it."""
        if g.site is None:
            g.site = _public_site(args.get("site"))
        article = article_or_404(ref)
        cfg = current_app.config
        limit = page_size(args.get("limit"), cfg["PAGE_SIZE"], cfg["PAGE_SIZE_MAX"])
        newest = args["order"] == "newest"
        key = (Comment.created_at, Comment.id)
        query = sa.select(Comment).where(
            Comment.article_id == article.id, Comment.status == CommentStatus.APPROVED
        )
        if args.get("cursor"):
            after = sa.tuple_(*key)
            position = cursor.decode(args["cursor"], (cursor.moment, cursor.row_id))
            bound = sa.tuple_(*(sa.literal(v) for v in position))
            query = query.where(after < bound if newest else after > bound)
        order = [c.desc() for c in key] if newest else list(key)
        rows = db.session.scalars(query.order_by(*order).limit(limit + 1)).all()
        items, more = rows[:limit], len(rows) > limit
        next_cursor = cursor.encode(items[-1].created_at, items[-1].id) if more else None
        return {"items": items, "next_cursor": next_cursor}


def _public_site(site_id: int | None) -> Site:
    """The site of an anonymous read: 401 unless it names a site that allows public reads."""
    ratelimit.check("ip", ratelimit.client_ip())
    site = db.session.get(Site, site_id) if site_id is not None else None
    if site is None or not site.public_reads:
        abort(
            401,
            "A valid API key is required, or `site` naming a site with public reads on.",
            headers={"WWW-Authenticate": 'Bearer realm="civility"'},
        )
    return site


@blp.after_app_request
def _cors(response):
    """Let a site's own origins read its public comment lists from browsers."""
    if g.get("api_key") is not None or request.method != "GET":
        return response  # keyed answers are for servers; g.site may not even be loaded
    site = g.get("site")
    origin = request.headers.get("Origin")
    if site is not None:
        response.vary.add("Origin")
        if origin and origin in (site.origins or []):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "ETag"
    return response


@blp.route("/comments/<int:comment_id>")
class CommentResource(MethodView):
    decorators = [require(Role.SITE)]

    @blp.doc(security=SECURITY)
    @blp.response(200, CommentOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, comment_id: int):
        """Read a comment's status (moderator keys also see scores, model and reasons)."""
        return comment_view(comment_or_404(comment_id))

    @blp.doc(security=SECURITY)
    @blp.response(200, CommentOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, comment_id: int):
        """Delete a comment (author or site request); audited, idempotent."""
        comment = comment_or_404(comment_id)
        [comment] = locked(Comment.id == comment.id)
        if moderate(
            comment, CommentStatus.DELETED, actor=actor_name(), reason_code="deleted"
        ).changed:
            db.session.commit()
        return comment_view(comment)


@blp.route("/comments/<int:comment_id>/reports")
class CommentReports(MethodView):
    decorators = [require(Role.SITE)]

    @blp.doc(security=SECURITY)
    @blp.arguments(ReportIn)
    @blp.response(201, ReportOut)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict, comment_id: int):
        """Report a comment for a reader; enough open reports send an approved one to held.

        One open report per reader and comment. An approved comment whose open reports
        reach the site's `requeue_reports` goes back to held with reason `reported`.
        """
        comment = comment_or_404(comment_id)
        report = reports.file_report(
            comment.id,
            reason=fields["reason"],
            reporter=fields.get("reporter_id"),
            note=fields.get("note"),
            actor=actor_name(),
            requeue_reports=g.site.requeue_reports,
        )
        db.session.commit()
        return report
