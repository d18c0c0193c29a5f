"""Moderator decisions: one comment, or many in bulk (undoable), and each comment's audit trail."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api.common import CleanString, Id, comment_or_404, owned_or_404
from service.api.schemas import QueueFilter, QueueItem
from service.auth import Role, actor_name, require
from service.errors import abort, field_error
from service.extensions import db
from service.models import BulkAction, Comment, ModerationEvent
from service.moderation import bulk
from service.moderation.locks import locked
from service.moderation.moderate import REASON_CODES, moderate
from service.moderation.review import conditions, render_items
from service.moderation.states import CommentStatus
from service.overlay import Overlay

blp = Blueprint(
    "decisions",
    __name__,
    url_prefix="/v1",
    description="Approve, hold or reject comments, one at a time or in bulk; the audit trail.",
)
SECURITY = [{"bearerAuth": ["moderator"]}]  # the least role allowed (OpenAPI 3.1 roles)
DECISIONS = {
    "approve": CommentStatus.APPROVED,
    "hold": CommentStatus.HELD,
    "reject": CommentStatus.REJECTED,
}


class DecisionFields(ma.Schema):
    decision = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(list(DECISIONS)),
        metadata={"description": "`approve`, `hold` or `reject`."},
    )
    reason_code = ma.fields.String(
        allow_none=True,
        validate=ma.validate.OneOf(REASON_CODES),
        metadata={"description": "Why: " + ", ".join(REASON_CODES) + "."},
    )
    note = CleanString(
        allow_none=True,
        multiline=True,
        validate=ma.validate.Length(max=2000),
        metadata={"description": "Free text for the audit trail."},
    )


class DecisionIn(DecisionFields):
    expected_status = ma.fields.String(
        validate=ma.validate.OneOf([s.value for s in CommentStatus]),
        metadata={
            "description": "The status you saw; if the comment has moved since, nothing "
            "changes and the answer is 409 with `current_status`."
        },
    )


class DecisionOut(ma.Schema):
    changed = ma.fields.Boolean(metadata={"description": "False when it already had that status."})
    resolved_reports = ma.fields.Integer(
        metadata={"description": "Open reports now resolved (by approve or reject, not hold)."}
    )
    comment = ma.fields.Nested(QueueItem)


class BulkIn(DecisionFields):
    ids = ma.fields.List(
        Id(strict=True),
        validate=ma.validate.Length(min=1),
        metadata={"description": "Comment ids (give `ids` or `filter`)."},
    )
    filter = ma.fields.Nested(
        QueueFilter, metadata={"description": "The queue's filters (status defaults to held)."}
    )
    dry_run = ma.fields.Boolean(
        load_default=False, metadata={"description": "Only count; change nothing."}
    )

    @ma.validates_schema
    def _one_selection(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("ids" in data) == ("filter" in data):
            raise ma.ValidationError("Give either ids or filter.", "filter")


class BulkOut(ma.Schema):
    bulk_id = ma.fields.String(
        attribute="id", allow_none=True, metadata={"description": "Null for a dry run."}
    )
    dry_run = ma.fields.Boolean()
    decision = ma.fields.String(metadata={"description": "approved, held, rejected or undo."})
    status = ma.fields.String(
        metadata={"description": "running, done, failed, undoing or undone; null for a dry run."},
        allow_none=True,
    )
    matched = ma.fields.Integer(metadata={"description": "Comments the selection matched."})
    changed = ma.fields.Integer(metadata={"description": "Comments moved (would be, dry run)."})
    skipped = ma.fields.Integer(
        metadata={"description": "Undo only: comments that changed since, left as they are."}
    )
    undo_of = ma.fields.String(allow_none=True)
    actor = ma.fields.String()
    reason_code = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    selection = ma.fields.Dict()
    created_at = ma.fields.AwareDateTime()
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    undone_at = ma.fields.AwareDateTime(allow_none=True)
    undone_by = ma.fields.String(allow_none=True)


class EventOut(ma.Schema):
    id = ma.fields.Integer()
    from_status = ma.fields.String(allow_none=True)
    to_status = ma.fields.String()
    actor = ma.fields.String(metadata={"description": "`policy` or the API key's name."})
    reason_code = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    reasons = ma.fields.List(ma.fields.Dict(), allow_none=True)
    scores = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(), allow_none=True)
    model = ma.fields.String(allow_none=True)
    bulk_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()


class History(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(EventOut), metadata={"description": "Oldest first."})


@blp.route("/comments/<int:comment_id>/decision")
class Decision(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=SECURITY)
    @blp.arguments(DecisionIn)
    @blp.response(200, DecisionOut)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict, comment_id: int):
        """Approve, hold or reject one comment; approving or rejecting resolves its reports."""
        found = locked(Comment.id == comment_id, Comment.site_id == g.site.id)
        if not found:
            abort(404, f"No comment {comment_id} on this site.")
        [comment] = found
        done = moderate(
            comment,
            DECISIONS[fields["decision"]],
            actor=actor_name(),
            expected=fields.get("expected_status"),
            review=True,
            reason_code=fields.get("reason_code"),
            note=fields.get("note"),
        )
        db.session.commit()
        return {
            "changed": bool(done.changed),
            "resolved_reports": done.resolved_reports,
            "comment": render_items([comment])[0],
        }


@blp.route("/comments/<int:comment_id>/history")
class CommentHistory(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=SECURITY)
    @blp.response(200, History)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, comment_id: int):
        """Every status change of a comment, oldest first: who, from, to, why."""
        comment = comment_or_404(comment_id)
        events = db.session.scalars(
            sa.select(ModerationEvent)
            .where(ModerationEvent.comment_id == comment.id)
            .order_by(ModerationEvent.id)
        ).all()
        return {"items": events}


def _selection(fields: dict[str, Any]) -> tuple[bulk.Selection, dict[str, Any], str]:
    """The bulk selection, its record for the BulkAction, and the field that made it."""
    site_id = g.site.id
    limit = current_app.config["BULK_MAX"]
    if "ids" in fields:
        ids = fields["ids"]
        if len(ids) > limit:
            field_error("ids", f"At most {limit} ids (CIVILITY_BULK_MAX).")
        selection = bulk.Selection(site_id, ids=tuple(ids))
        missing = selection.missing()
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
            field_error("ids", f"Not comments of this site: {shown}.")
        return selection, {"ids": sorted(set(ids))}, "ids"
    where = tuple(conditions(site_id, fields["filter"]))
    record = {"filter": QueueFilter().dump(fields["filter"])}
    selection = bulk.Selection(site_id, where=where, status=fields["filter"]["status"])
    return selection, record, "filter"


def _check_size(matched: int, field: str) -> None:
    limit = current_app.config["BULK_MAX"]
    if matched > limit:
        abort(
            422,
            f"Invalid {field}: it matches {matched} comments, more than {limit} "
            "(CIVILITY_BULK_MAX); narrow it, e.g. with since/until.",
            errors={"json": {field: [f"Matches more than {limit} comments."]}},
            matched=matched,
        )


@blp.route("/decisions/bulk")
class BulkDecision(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=SECURITY)
    @blp.arguments(BulkIn)
    @blp.response(200, BulkOut)
    def post(self, fields: dict):
        """Decide many comments by ids or filter; `dry_run` counts; undoable by its bulk_id.

        Runs in transactions of CIVILITY_BULK_CHUNK_SIZE comments; at most
        CIVILITY_BULK_MAX (default 50,000) may match, more answer 422. The answer comes
        when every chunk is done: 50,000 comments take tens of seconds.
        """
        selection, record, field = _selection(fields)
        target = DECISIONS[fields["decision"]]
        if fields["dry_run"]:
            plan = bulk.plan(selection, target)
            _check_size(plan.matched, field)
            return {"id": None, "dry_run": True, "decision": target, **plan.__dict__}
        matched = selection.count()
        _check_size(matched, field)
        action = bulk.run(
            selection,
            target,
            actor=actor_name(),
            matched=matched,
            chunk_size=current_app.config["BULK_CHUNK_SIZE"],
            record=record,
            reason_code=fields.get("reason_code"),
            note=fields.get("note"),
        )
        return _render(action, dry_run=False)


def _render(action: BulkAction, **extra: Any) -> Overlay:
    """The bulk action for BulkOut to dump; an undo also says how many it skipped."""
    if action.undo_of is not None:
        extra["skipped"] = action.matched - action.changed
    return Overlay(action, **extra)


def bulk_or_404(bulk_id: str) -> BulkAction:
    """The current site's bulk action; 404 for unknown and other sites' ids alike."""
    return owned_or_404(BulkAction, bulk_id[:36], "bulk action")


@blp.route("/decisions/bulk/<bulk_id>")
class BulkResource(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=SECURITY)
    @blp.response(200, BulkOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, bulk_id: str):
        """Read a bulk action: what it selected, counts, and whether it was undone."""
        return _render(bulk_or_404(bulk_id))


@blp.route("/decisions/bulk/<bulk_id>/undo")
class BulkUndo(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=SECURITY)
    @blp.response(200, BulkOut)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, bulk_id: str):
        """Undo a bulk action: comments it moved go back, unless they were changed since.

        Audited as its own bulk action (`undo_of`); a second undo answers 409.
        """
        action = bulk_or_404(bulk_id)
        try:
            undo = bulk.undo(
                action, actor=actor_name(), chunk_size=current_app.config["BULK_CHUNK_SIZE"]
            )
        except bulk.NotUndoable:
            action = bulk_or_404(bulk_id)
            why = {
                "undone": "it was undone already",
                "running": "it is still running",
                "undoing": "it is being undone",
            }.get(action.status, "it is itself an undo")
            abort(409, f"Bulk action {bulk_id} cannot be undone: {why}.", bulk_status=action.status)
        return _render(undo, dry_run=False)
