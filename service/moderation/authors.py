"""Authors' standing: the status in force, status changes with notes, bans that reject.

An author's ``premod`` or ``banned`` may end at ``until``; from then on the status in
force is ``active`` (``effective_status``), for the policy, the queue and the author's
page alike. A moderator may act on an author before their first comment (a known
spammer banned ahead): ``for_update(..., create=True)`` makes the row.
"""

from __future__ import annotations

from datetime import datetime

from service import outbox
from service.extensions import get_or_create
from service.models import Author, BulkAction, Comment, utcnow
from service.moderation import bulk
from service.moderation.locks import locked_author
from service.moderation.states import AuthorStatus, CommentStatus

SUSPENSIONS = (AuthorStatus.PREMOD, AuthorStatus.BANNED)
# A ban with reject_existing rejects what readers see or may soon see; deleted and
# rejected comments stay as they are.
LIVE = (CommentStatus.PENDING, CommentStatus.HELD, CommentStatus.APPROVED)
BAN_REASON = "author_banned"


def effective_status(
    status: str, until: datetime | None, now: datetime | None = None
) -> AuthorStatus:
    """The status in force at ``now``: a premod or ban whose ``until`` has passed is active."""
    if until is not None and until <= (now or utcnow()):
        return AuthorStatus.ACTIVE
    return AuthorStatus(status)


def status_of(author: Author, now: datetime | None = None) -> AuthorStatus:
    """``author``'s status in force at ``now`` (see effective_status)."""
    return effective_status(author.status, author.status_until, now)


def normalise(author: Author, now: datetime) -> bool:
    """Store an expired suspension as ``active``; True when it changed the row."""
    if status_of(author, now) == author.status:
        return False
    author.status = AuthorStatus.ACTIVE
    author.status_until = None
    return True


def for_update(site_id: int, ref: str, *, create: bool = False) -> Author | None:
    """The site's author ``ref``, row-locked; made first when unknown and ``create``."""
    if create:
        get_or_create(Author, site_id=site_id, ref=ref)
    return locked_author(site_id, ref)


def live_comments(author: Author) -> bulk.Selection:
    """The author's comments a ban with reject_existing rejects."""
    return bulk.Selection(
        author.site_id, where=(Comment.author_id == author.id, Comment.status.in_(LIVE))
    )


def _append_note(author: Author, now: datetime, actor: str, text: str) -> None:
    line = f"{now.isoformat(timespec='seconds')} {actor}: {text}"
    author.notes = f"{author.notes}\n{line}" if author.notes else line


def change(
    author: Author,
    status: str,
    until: datetime | None,
    *,
    actor: str,
    now: datetime,
    note: str | None = None,
    announce_ban: bool = False,
    bulk_id: str | None = None,
) -> None:
    """Set the author's standing in the caller's transaction; notes say who, when, what.

    A changed status is noted, then ``note``; ``announce_ban`` emits ``author.banned``
    (with the ``bulk_id`` of the rejection that follows, if any). The caller commits
    before rejecting existing comments, so the ban is in force for new ones first.
    """
    if (status, until) != (author.status, author.status_until):
        author.status, author.status_until = status, until
        ends = f" until {until.isoformat(timespec='seconds')}" if until else ""
        _append_note(author, now, actor, f"status {status}{ends}")
    if note:
        _append_note(author, now, actor, note)
    if announce_ban:
        outbox.author_banned(author, actor=actor, until=until, note=note, bulk_id=bulk_id)


def reject_existing(
    author: Author,
    *,
    actor: str,
    matched: int,
    chunk_size: int,
    bulk_id: str,
    note: str | None = None,
) -> BulkAction:
    """Reject the author's live comments as one undoable bulk action (commits per chunk)."""
    return bulk.run(
        live_comments(author),
        CommentStatus.REJECTED,
        actor=actor,
        matched=matched,
        chunk_size=chunk_size,
        record={"author": author.ref, "status": list(LIVE), "via": "author ban"},
        reason_code=BAN_REASON,
        note=note,
        action_id=bulk_id,
    )
