"""One batch of the scoring worker: read pending texts, score them, decide and commit."""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from service.extensions import db
from service.models import Comment, Site, utcnow
from service.moderation.authors import status_of
from service.moderation.locks import comments_for_update
from service.moderation.moderate import POLICY, moderate
from service.moderation.policy import PolicySettings, decide
from service.moderation.states import CommentStatus, Mode
from workers.daemon import transient
from workers.routing import Route, Routed, Router, SiteLanguages
from workers.scorers import Between, Scored, Scorer

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of a batch's comments."""

    decided: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # gone or no longer pending: ack only
    failed: dict[int, str] = field(default_factory=dict)  # not decided: unacked, retried later

    def merge(self, other: Outcome) -> None:
        self.decided += other.decided
        self.skipped += other.skipped
        self.failed.update(other.failed)


class Decider:
    """The database and model side of a batch; the worker adds retries and the stream."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        # A lone scorer reads every language (detection still runs and is stored).
        self.router = scorer if isinstance(scorer, Router) else Router([Route("", scorer, None)])
        self.sites: dict[int, SiteLanguages] = {}  # by comment id, for routing

    def pending_texts(self, ids: list[int]) -> dict[int, str]:
        """Bodies of the comments among ``ids`` that are still pending (and, for routing,
        their sites' language settings)."""
        try:
            rows = db.session.execute(
                sa.select(
                    Comment.id, Comment.body, Site.language_scorers, Site.unsupported_language
                )
                .join(Site, Site.id == Comment.site_id)
                .where(Comment.id.in_(ids), Comment.status == CommentStatus.PENDING)
            ).all()
            self.sites = {
                row.id: SiteLanguages(row.language_scorers or {}, row.unsupported_language)
                for row in rows
            }
            return {row.id: row.body for row in rows}
        finally:
            db.session.rollback()  # end the read now; see _decide

    def plan(self, texts: dict[int, str]) -> list[dict[int, str]]:
        """The texts split into the scorer's passes, in the order to score them. If planning
        fails, one group of all: scoring then reports the failure per comment."""
        ids = list(texts)
        try:
            passes = self.router.plan(
                [texts[cid] for cid in ids], [self.sites.get(cid) for cid in ids]
            )
            if sorted(i for group in passes for i in group) != list(range(len(ids))):
                raise RuntimeError("the plan does not cover every text once")
        except Exception:
            log.warning("scorer %s: cannot plan passes", self.scorer.model, exc_info=True)
            return [texts] if texts else []
        return [{ids[i]: texts[ids[i]] for i in group} for group in passes if group]

    def score(self, texts: dict[int, str], between: Between = None) -> dict[int, Scored]:
        """Scores per comment from one ``score_detailed`` call (``between`` runs between its
        forward passes); unusable results become errors."""
        ids = list(texts)
        try:
            results = self.router.score_detailed(
                [texts[cid] for cid in ids], [self.sites.get(cid) for cid in ids], between=between
            )
            if len(results) != len(ids):
                raise RuntimeError(f"{len(results)} results for {len(ids)} texts")
        except Exception as exc:  # the model itself failed: every text is retried later
            log.error("batch of %d: scorer %s failed", len(ids), self.scorer.model, exc_info=True)
            return {cid: Scored(None, error=f"{type(exc).__name__}: {exc}") for cid in ids}
        scored = {}
        for cid, result in zip(ids, results, strict=True):
            unread = isinstance(result, Routed) and result.model is None  # no scorer reads it
            if result.error is None and (
                (not result.scores and not unread)
                or not all(math.isfinite(v) for v in (result.scores or {}).values())
            ):
                result = Scored(None, result.truncated, f"unusable scores {result.scores!r}")
            scored[cid] = result
        return scored

    def apply(self, scored: dict[int, Scored]) -> Outcome:
        """Decide and commit; when the batch hits a data error, decide its comments one by one
        so one bad comment cannot fail the others."""
        try:
            return self.apply_once(scored)
        except Exception as exc:
            db.session.rollback()
            if transient(exc):
                raise
            if len(scored) == 1:
                comment_id = next(iter(scored))
                log.error("comment %s: cannot be decided", comment_id, exc_info=True)
                return Outcome(failed={comment_id: f"{type(exc).__name__}: {exc}"})
            log.warning("batch of %d: %s; deciding one by one", len(scored), exc)
        outcome = Outcome()
        for comment_id, result in scored.items():
            outcome.merge(self.apply({comment_id: result}))
        return outcome

    def apply_once(self, scored: dict[int, Scored]) -> Outcome:
        """Lock the comments, decide the pending ones by policy, commit."""
        outcome = Outcome()
        now = utcnow()
        settings: dict[tuple[int, str | None], PolicySettings | Exception] = {}
        found = set()
        for comment, site in self.locked(list(scored)):
            found.add(comment.id)
            if comment.status != CommentStatus.PENDING:
                outcome.skipped.append(comment.id)
                continue
            result = scored[comment.id]
            assert result.scores is not None
            routed = result if isinstance(result, Routed) else Routed(result.scores)
            model = routed.model if isinstance(result, Routed) else self.scorer.model
            try:
                article_mode = comment.article.mode
                decision = decide(
                    result.scores,
                    comment.body,
                    status_of(comment.author, now),
                    comment.author.approved_count,
                    self.policy_settings(site, model, settings),
                    Mode(article_mode) if article_mode else None,
                    language=routed.language,
                    language_supported=routed.supported,
                )
            except Exception as exc:  # corrupt settings or a policy bug: this comment only
                outcome.failed[comment.id] = f"policy: {type(exc).__name__}: {exc}"
                continue
            reasons = [*decision.reasons, *routed.notes]
            if result.truncated:
                reasons.append({"code": "truncated"})
            reason_code = reasons[0]["code"] if reasons else None
            comment.model = model
            comment.scored_at = now if model else None
            comment.language, comment.language_confidence = routed.language, routed.confidence
            moderate(
                comment,
                decision.status,
                actor=POLICY,
                reasons=reasons,
                scores=result.scores or None,
                model=model,
                reason_code=reason_code,
            )
            outcome.decided.append(comment.id)
            log.debug("comment %s: %s (%s)", comment.id, decision.status, reason_code)
        outcome.skipped += [cid for cid in scored if cid not in found]
        db.session.commit()
        return outcome

    def hold(self, comment_ids: list[int]) -> list[int]:
        """Hold the pending ones among ``comment_ids`` with reason ``scoring_failed``."""
        held = []
        for comment, _ in self.locked(comment_ids):
            if comment.status == CommentStatus.PENDING:
                moderate(
                    comment,
                    CommentStatus.HELD,
                    actor=POLICY,
                    reasons=[{"code": "scoring_failed"}],
                    reason_code="scoring_failed",
                )
                held.append(comment.id)
        db.session.commit()
        for comment_id in held:
            log.warning("comment %s: held (scoring_failed)", comment_id)
        return held

    def log_decided(self, comment_ids: list[int]) -> None:
        """One line per decided comment with the request id of its submission, so a comment
        can be followed from the API's log through this one to the dispatcher's."""
        if not comment_ids:
            return
        try:
            rows = db.session.execute(
                sa.select(Comment.id, Comment.status, Comment.request_id).where(
                    Comment.id.in_(comment_ids)
                )
            ).all()
        except sa.exc.SQLAlchemyError as exc:
            log.debug("batch: decisions not logged (%s)", exc)
            rows = []
        finally:
            # End the read now: on SQLite it holds the write lock.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                db.session.rollback()
        for row in rows:
            log.info(
                "comment %s: %s by policy", row.id, row.status, extra={"request_id": row.request_id}
            )

    def locked(self, ids: list[int]) -> list[Any]:
        """(comment, site) rows with each comment's article and author, in one locking query
        (service.moderation.locks: two workers never decide one comment, nor deadlock)."""
        statement = comments_for_update(Comment.id.in_(ids)).add_columns(Site)
        statement = statement.join(Site, Site.id == Comment.site_id)
        return list(db.session.execute(statement).all())

    def policy_settings(
        self,
        site: Site,
        model: str | None,
        cache: dict[tuple[int, str | None], PolicySettings | Exception],
    ) -> PolicySettings:
        """The site's compiled settings for the model that read the comment (each scorer has
        its own default thresholds: profanity-check's sit on another scale than Detoxify's),
        built once per batch and model (word lists can be long)."""
        key = (site.id, model)
        if key not in cache:
            try:
                cache[key] = PolicySettings.from_site(site, model)
            except Exception as exc:
                cache[key] = exc
        settings = cache[key]
        if isinstance(settings, Exception):
            raise settings
        return settings
