"""Bulk decisions: many comments moved in bounded, row-locked chunks under one undoable bulk id."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.extensions import db
from service.models import BulkAction, Comment, ModerationEvent, utcnow
from service.moderation.locks import locked
from service.moderation.moderate import UNDONE, MoveConflict, moderate
from service.moderation.states import CommentStatus, sources

log = logging.getLogger(__name__)

UNDO = UNDONE  # the reason code of an undo's moves
# Comments per IN list when counting or checking explicit ids (well under SQLite's variable cap).
ID_BATCH = 1000


class NotUndoable(Exception):
    """The bulk action is running, already undone, or itself an undo."""


def new_id() -> str:
    """A new bulk action id."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Selection:
    """The comments of one site a bulk action covers: explicit ids, or filter conditions."""

    site_id: int
    ids: tuple[int, ...] | None = None
    where: tuple[Any, ...] = ()
    # The one status every comment a filter selects has (``where`` says so too), if known.
    status: str | None = None

    def conditions(self, *extra: Any) -> list[Any]:
        """SQL conditions selecting these comments (and ``extra``)."""
        return [Comment.site_id == self.site_id, *self.where, *extra]

    def chunks(self, size: int, *extra: Any) -> Iterator[list[int]]:
        """Ids of the selected comments that satisfy ``extra``, ascending, ``size`` at a time.

        Keyset over id: each chunk is a fresh query, so comments that leave the
        selection meanwhile are skipped and memory stays bounded by ``size``.
        """
        if self.ids is not None:
            ids = sorted(set(self.ids))
            for start in range(0, len(ids), size):
                found = db.session.scalars(
                    sa.select(Comment.id)
                    .where(*self.conditions(*extra), Comment.id.in_(ids[start : start + size]))
                    .order_by(Comment.id)
                ).all()
                if found:
                    yield list(found)
            return
        after = 0
        while True:
            found = db.session.scalars(
                sa.select(Comment.id)
                .where(*self.conditions(*extra), Comment.id > after)
                .order_by(Comment.id)
                .limit(size)
            ).all()
            if not found:
                return
            yield list(found)
            after = found[-1]

    def count(self, *extra: Any) -> int:
        """How many comments the selection holds (that also satisfy ``extra``)."""
        if self.ids is not None:
            return sum(len(chunk) for chunk in self.chunks(ID_BATCH, *extra))
        query = sa.select(sa.func.count()).select_from(Comment).where(*self.conditions(*extra))
        return db.session.scalar(query)

    def missing(self) -> list[int]:
        """Explicit ids that are not comments of this site (unknown or another site's)."""
        if self.ids is None:
            return []
        found = {cid for chunk in self.chunks(ID_BATCH) for cid in chunk}
        return sorted(set(self.ids) - found)


@dataclass(frozen=True)
class Plan:
    """What a bulk decision would do: comments matched, and how many of them would move."""

    matched: int
    changed: int


def plan(selection: Selection, to_status: CommentStatus) -> Plan:
    """Count what ``run`` would do now: the dry run.

    A filter names one status, so whether its matches can move is known: one count,
    read from an index when one covers the filter.
    """
    movable = sources(to_status)
    if selection.ids is None and selection.status is not None:
        matched = selection.count()
        return Plan(matched=matched, changed=matched if selection.status in movable else 0)
    if selection.ids is None:
        matched, changed = db.session.execute(
            sa.select(sa.func.count(), sa.func.count().filter(Comment.status.in_(movable)))
            .select_from(Comment)
            .where(*selection.conditions())
        ).one()
        return Plan(matched=matched, changed=changed)
    return Plan(matched=selection.count(), changed=selection.count(Comment.status.in_(movable)))


def run(
    selection: Selection,
    to_status: CommentStatus,
    *,
    actor: str,
    matched: int,
    chunk_size: int,
    record: dict[str, Any],
    reason_code: str | None = None,
    note: str | None = None,
    action_id: str | None = None,
) -> BulkAction:
    """Move every selected comment that can reach ``to_status``, one transaction per chunk.

    Comments already there (or deleted) are left alone. Each move is audited with the
    returned action's id as ``bulk_id`` (``action_id`` when given), so ``undo`` can
    restore it.
    """
    action_id = _start(
        selection.site_id,
        actor,
        to_status,
        record,
        matched,
        action_id=action_id,
        reason_code=reason_code,
        note=note,
    )
    movable = Comment.status.in_(sources(to_status))
    try:
        for ids in selection.chunks(chunk_size, movable):
            # Conditions again, under the lock: a comment decided meanwhile is skipped.
            comments = locked(Comment.id.in_(ids), *selection.conditions(movable))
            done = moderate(
                comments,
                to_status,
                actor=actor,
                review=True,
                reason_code=reason_code,
                note=note,
                bulk_id=action_id,
            )
            _add_counts(action_id, changed=done.changed)
            db.session.commit()
    except Exception:
        db.session.rollback()
        _finish(action_id, "failed")
        raise
    return _finish(action_id, "done")


def undo(action: BulkAction, *, actor: str, chunk_size: int) -> BulkAction:
    """Move every comment of ``action`` back where it was, unless it changed since.

    Returns the undo's own BulkAction (``undo_of`` = the original); its ``matched`` counts
    the original's moves and ``changed`` those restored. Comments moved again since, or
    that cannot go back (nothing returns to ``pending``), are skipped.
    """
    original_id, original_status = action.id, action.status
    claimed = db.session.execute(
        sa.update(BulkAction)
        .where(
            BulkAction.id == original_id,
            BulkAction.status.in_(("done", "failed")),
            BulkAction.undo_of.is_(None),
        )
        .values(status="undoing")
    ).rowcount
    if not claimed:
        db.session.rollback()
        raise NotUndoable(original_id)
    undo_id = _start(action.site_id, actor, UNDO, {"undo_of": original_id}, 0, undo_of=original_id)
    note = f"undo of bulk action {original_id}"
    try:
        after = 0
        while True:
            events = db.session.execute(
                sa.select(
                    ModerationEvent.id,
                    ModerationEvent.comment_id,
                    ModerationEvent.from_status,
                    ModerationEvent.to_status,
                )
                .where(ModerationEvent.bulk_id == original_id, ModerationEvent.id > after)
                .order_by(ModerationEvent.id)
                .limit(chunk_size)
            ).all()
            if not events:
                break
            after = events[-1].id
            comments = {c.id: c for c in locked(Comment.id.in_([e.comment_id for e in events]))}
            restored = 0
            for event in events:
                comment = comments.get(event.comment_id)
                if comment is None or event.from_status is None:
                    continue
                try:
                    restored += moderate(
                        comment,
                        CommentStatus(event.from_status),
                        actor=actor,
                        expected=event.to_status,  # moved again since: left as it is
                        reason_code=UNDO,
                        note=note,
                        bulk_id=undo_id,
                    ).changed
                except MoveConflict:
                    continue  # changed since, or cannot go back (nothing returns to pending)
            _add_counts(undo_id, matched=len(events), changed=restored)
            db.session.commit()
    except Exception:
        db.session.rollback()
        # Let a retry finish the job: restored comments are skipped as "changed since".
        db.session.execute(
            sa.update(BulkAction).where(BulkAction.id == original_id).values(status=original_status)
        )
        _finish(undo_id, "failed")
        raise
    db.session.execute(
        sa.update(BulkAction)
        .where(BulkAction.id == original_id)
        .values(status="undone", undone_at=utcnow(), undone_by=actor)
    )
    return _finish(undo_id, "done")


def _start(
    site_id: int,
    actor: str,
    decision: str,
    record: dict[str, Any],
    matched: int,
    action_id: str | None = None,
    **fields: Any,
) -> str:
    """Commit a new running BulkAction and return its id, which tags every chunk's events."""
    action_id = action_id or new_id()
    action = BulkAction(
        id=action_id,
        site_id=site_id,
        actor=actor,
        decision=decision,
        selection=record,
        matched=matched,
        changed=0,
        status="running",
        **fields,
    )
    db.session.add(action)
    db.session.commit()
    log.info("bulk %s: %s by %s, %d matched", action_id, decision, actor, matched)
    return action_id


def _add_counts(action_id: str, *, changed: int, matched: int = 0) -> None:
    # An increment in SQL, in the chunk's transaction: a crash leaves true partial counts.
    db.session.execute(
        sa.update(BulkAction)
        .where(BulkAction.id == action_id)
        .values(matched=BulkAction.matched + matched, changed=BulkAction.changed + changed)
    )


def _finish(action_id: str, status: str) -> BulkAction:
    db.session.execute(
        sa.update(BulkAction)
        .where(BulkAction.id == action_id)
        .values(status=status, finished_at=utcnow())
    )
    db.session.commit()
    action = db.session.get(BulkAction, action_id)
    log.info("bulk %s: %s, %d of %d changed", action_id, status, action.changed, action.matched)
    return action
