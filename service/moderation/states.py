"""Comment states and the moves allowed between them; author states; moderation modes.

    pending  --policy-->     approved | held | rejected
    held     --moderator-->  approved | rejected
    approved <--moderator--> rejected       (overrides are audited too)
    approved --reports-->    held           (site.requeue_reports; 0 = never)
    any      --delete-->     deleted        (nothing leaves deleted)

Moderators may also hold an approved or rejected comment again. Every move goes
through ``service.moderation.moderate.moderate``, which checks it against ALLOWED_MOVES.
"""

from enum import StrEnum


class CommentStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    HELD = "held"
    REJECTED = "rejected"
    DELETED = "deleted"


class AuthorStatus(StrEnum):
    ACTIVE = "active"
    TRUSTED = "trusted"
    PREMOD = "premod"
    BANNED = "banned"


class Mode(StrEnum):
    POST = "post"
    PRE = "pre"


_S = CommentStatus

# Who may move a comment where. "any -> deleted" is allowed from every live state.
ALLOWED_MOVES: dict[CommentStatus, frozenset[CommentStatus]] = {
    _S.PENDING: frozenset({_S.APPROVED, _S.HELD, _S.REJECTED, _S.DELETED}),
    _S.HELD: frozenset({_S.APPROVED, _S.REJECTED, _S.DELETED}),
    _S.APPROVED: frozenset({_S.REJECTED, _S.HELD, _S.DELETED}),
    _S.REJECTED: frozenset({_S.APPROVED, _S.HELD, _S.DELETED}),
    _S.DELETED: frozenset(),
}


def can_move(from_status: CommentStatus, to_status: CommentStatus) -> bool:
    """True when the state machine allows ``from_status -> to_status``."""
    return to_status in ALLOWED_MOVES[CommentStatus(from_status)]


def sources(to_status: CommentStatus) -> list[CommentStatus]:
    """The statuses from which the state machine allows a move to ``to_status``."""
    return [status for status, targets in ALLOWED_MOVES.items() if to_status in targets]
