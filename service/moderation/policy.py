"""The moderation policy: scores, body, author and settings in; a status and reasons out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from service.moderation.states import AuthorStatus, CommentStatus, Mode
from service.moderation.words import WordList

LABELS: tuple[str, ...] = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "sexual_explicit",
)

# Detoxify scores are roughly calibrated probabilities, so a threshold reads as "how sure
# must the model be". Holding is cheap: a moderator looks and approves in a click. Rejecting
# is costly: a false positive silences a reader, who rarely complains. So reject thresholds
# sit near certainty, and hold thresholds are lower. The severe labels (threat,
# severe_toxicity, identity_attack) hold early because they are rarely scored high on
# ordinary comments and a missed one does real harm; obscene holds late because swearing is
# common and mostly harmless.
DEFAULT_HOLD_AT: Mapping[str, float] = MappingProxyType(
    {
        "toxicity": 0.6,
        "severe_toxicity": 0.2,
        "obscene": 0.7,
        "threat": 0.3,
        "insult": 0.6,
        "identity_attack": 0.3,
        "sexual_explicit": 0.6,
    }
)
DEFAULT_REJECT_AT: Mapping[str, float] = MappingProxyType(
    {
        "toxicity": 0.95,
        "severe_toxicity": 0.8,
        "obscene": 0.98,
        "threat": 0.9,
        "insult": 0.95,
        "identity_attack": 0.9,
        "sexual_explicit": 0.95,
    }
)

# alt-profanity-check's probabilities sit on another scale than Detoxify's. bench/thresholds.py
# derives its defaults from bench/data: hold at the best mean F1 of "not approved" across the
# Davidson tweets and the Jigsaw sample (0.37: F1 0.980 and 0.786; Detoxify's 0.6 gives 0.973
# and 0.769), reject at the lowest threshold upheld at 95% precision in both (0.97: 0.998
# and 1.0; 0.95 gives 0.875 on Jigsaw). alt-profanity-check was trained on the Davidson
# tweets and on Wikipedia data, so these figures on them are optimistic.
PROFANITY_CHECK_HOLD_AT = 0.37
PROFANITY_CHECK_REJECT_AT = 0.97

# Each scorer's defaults, by scorer name (a comment's ``model`` before the "@"); scorers not
# named here (every Detoxify model) take DEFAULT_HOLD_AT / DEFAULT_REJECT_AT.
SCORER_DEFAULTS: Mapping[str, tuple[Mapping[str, float], Mapping[str, float]]] = MappingProxyType(
    {
        "profanity-check": (
            MappingProxyType({**DEFAULT_HOLD_AT, "toxicity": PROFANITY_CHECK_HOLD_AT}),
            MappingProxyType({**DEFAULT_REJECT_AT, "toxicity": PROFANITY_CHECK_REJECT_AT}),
        )
    }
)


def default_thresholds(model: str | None) -> tuple[Mapping[str, float], Mapping[str, float]]:
    """The (hold_at, reject_at) defaults of the scorer behind ``model`` (``name@version`` or a
    scorer spec); Detoxify's when ``model`` is None or names no scorer with its own."""
    name = (model or "").split("@", 1)[0]
    return SCORER_DEFAULTS.get(name, (DEFAULT_HOLD_AT, DEFAULT_REJECT_AT))


# Bare domains are only links when the top-level domain is a common one (or a path follows),
# so "e.g.", "3.5", "a.m." and "agree.But" stay plain text.
# fmt: off
_COMMON_TLDS = frozenset({
    "com", "net", "org", "info", "biz", "io", "co", "ly", "gl", "gg", "tv", "xyz", "top",
    "site", "online", "club", "app", "dev", "shop", "store", "link", "click", "live", "news",
    "blog", "ru", "cn", "uk", "de", "fr", "es", "nl", "pl", "eu", "ca", "au", "br", "jp", "ch",
    "se", "tk", "ml", "ga", "cf",
})
# fmt: on
_URL = re.compile(r"https?://\S|\bwww\.\w", re.IGNORECASE)
# A dotted run, matched whole from its start, so a comment of "a.a.a..." scans in linear time.
_HOST = re.compile(r"(?<![\w.-])[a-z0-9-]+(?:\.[a-z0-9-]+)+(/)?", re.IGNORECASE | re.ASCII)


def has_link(body: str) -> bool:
    """True when ``body`` contains a URL, a ``www.`` address or a bare domain."""
    if _URL.search(body):
        return True
    for host in _HOST.finditer(body):
        tld = host.group().rstrip("/").rsplit(".", 1)[1].lower()
        if tld in _COMMON_TLDS or (host.group(1) and tld.isalpha() and 2 <= len(tld) <= 24):
            return True
    return False


class UnsupportedLanguage(StrEnum):
    """What becomes of a comment in a language no loaded scorer reads."""

    HOLD = "hold"  # never scored, held for a moderator
    SCORE = "score"  # scored by the fallback language's scorer, the reason recorded


class SettingsError(ValueError):
    """Settings the policy cannot apply: ``field`` names the setting, ``errors`` the details."""

    def __init__(self, field: str, message: str, errors: Any = None) -> None:
        super().__init__(f"Invalid {field}: {message}")
        self.field = field
        self.errors = errors if errors is not None else [message]


def _thresholds(defaults: Mapping[str, float], overrides: Any, key: str) -> Mapping[str, float]:
    """Defaults with ``overrides`` applied per label; ``None`` turns a label off."""
    merged = dict(defaults)
    for label, value in (overrides or {}).items():
        if label not in defaults:
            raise SettingsError(key, f"unknown label {label!r}")
        if value is None:
            merged.pop(label, None)
            continue
        threshold = float(value)
        if not 0.0 <= threshold <= 1.0:
            raise SettingsError(key, f"{label}: {value!r} is not between 0 and 1")
        merged[label] = threshold
    return MappingProxyType(merged)


def thresholds(
    hold_at: Any, reject_at: Any, model: str | None = None
) -> tuple[Mapping[str, float], Mapping[str, float]]:
    """(hold_at, reject_at) as the policy applies them: the defaults of the scorer behind
    ``model``, a site's overrides per label; a label set to ``None`` is off (absent)."""
    hold_defaults, reject_defaults = default_thresholds(model)
    return (
        _thresholds(hold_defaults, hold_at, "hold_at"),
        _thresholds(reject_defaults, reject_at, "reject_at"),
    )


def shown(applied: Mapping[str, float]) -> dict[str, float | None]:
    """Every label's applied threshold, ``None`` where it is off: how the API shows them."""
    return {label: applied.get(label) for label in LABELS}


def check_order(hold_at: Mapping[str, float], reject_at: Mapping[str, float]) -> None:
    """SettingsError naming hold_at when a label would hold above where it rejects."""
    wrong = sorted(
        label
        for label in LABELS
        if label in hold_at and label in reject_at and hold_at[label] > reject_at[label]
    )
    if wrong:
        raise SettingsError(
            "hold_at",
            "must not be above reject_at for " + ", ".join(wrong) + ".",
            {label: ["Above reject_at."] for label in wrong},
        )


def _words(value: Iterable[str] | None) -> WordList:
    """A compiled word list from a list of strings (or nothing)."""
    return WordList.compile(value or ())


@dataclass(frozen=True)
class PolicySettings:
    """A site's moderation settings, immutable so one instance can be cached and shared."""

    mode: Mode = Mode.POST
    # Shared read-only defaults: a mappingproxy is immutable but not hashable, hence the factory.
    hold_at: Mapping[str, float] = field(default_factory=lambda: DEFAULT_HOLD_AT)
    reject_at: Mapping[str, float] = field(default_factory=lambda: DEFAULT_REJECT_AT)
    banned_words: WordList = field(default_factory=WordList)
    suspect_words: WordList = field(default_factory=WordList)
    hold_links: bool = False
    new_author_premod: int = 0  # hold until the author has this many approved; 0 = off
    requeue_reports: int = 3  # reports that send an approved comment back to held
    unsupported_language: UnsupportedLanguage = UnsupportedLanguage.HOLD

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], model: str | None = None) -> PolicySettings:
        """Build settings from plain data; missing (or ``None``) keys take the defaults.

        Thresholds override only the labels they name, over the defaults of the scorer
        behind ``model`` (see default_thresholds); a label set to ``None`` is not checked.
        Unknown labels and thresholds outside 0..1 raise SettingsError (a ValueError).
        """
        hold_at, reject_at = thresholds(d.get("hold_at"), d.get("reject_at"), model)

        def get(key: str, default: Any) -> Any:
            value = d.get(key)
            return default if value is None else value

        return cls(
            mode=Mode(get("mode", Mode.POST)),
            hold_at=hold_at,
            reject_at=reject_at,
            banned_words=_words(d.get("banned_words")),
            suspect_words=_words(d.get("suspect_words")),
            hold_links=bool(get("hold_links", False)),
            new_author_premod=int(get("new_author_premod", 0)),
            requeue_reports=int(get("requeue_reports", 3)),
            unsupported_language=UnsupportedLanguage(
                get("unsupported_language", UnsupportedLanguage.HOLD)
            ),
        )

    @classmethod
    def from_site(
        cls, site: Any, model: str | None = None, *, ordered: bool = False
    ) -> PolicySettings:
        """The settings a site stores (a Site row, or a mapping of its columns by name).

        The one way stored settings become policy settings: the worker, the drop-in faces,
        simulation, and PATCH /v1/site, which validates what it would store through it with
        ``ordered`` (no label may hold above where it rejects, the scorer's defaults
        included; not asked of stored settings, which a change of scorer's defaults must
        not make unusable). Raises SettingsError naming the field.
        """
        if not isinstance(site, Mapping):
            site = {name: getattr(site, name) for name in SITE_FIELDS}
        settings = cls.from_mapping(site, model)
        if ordered:
            check_order(settings.hold_at, settings.reject_at)
        return settings


# The Site columns the policy reads: named like PolicySettings' fields.
SITE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PolicySettings))


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one comment, and why, in order."""

    status: CommentStatus
    reasons: list[dict[str, Any]]


def _over(
    scores: Mapping[str, float], thresholds: Mapping[str, float], skip: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One reason per label whose score reaches its threshold; missing labels are skipped."""
    reasons = []
    for label, threshold in thresholds.items():
        score = scores.get(label)
        if score is not None and score >= threshold and label not in skip:
            reasons.append(
                {
                    "code": label,
                    "label": label,
                    "score": round(float(score), 4),
                    "threshold": threshold,
                }
            )
    return reasons


def decide(
    scores: Mapping[str, float],
    body: str,
    author_status: AuthorStatus,
    author_approved_count: int,
    settings: PolicySettings,
    article_mode: Mode | None = None,
    *,
    language: str | None = None,
    language_supported: bool = True,
) -> Decision:
    """Decide a comment's status from its scores, body, author and the site's settings.

    Rules in precedence order:

    1-3. Reject when the author is banned, the body has a banned word, or a label
         score reaches ``reject_at``. The reasons list every reject rule that fired
         (in that order), then every hold finding (steps 6-10) for the moderator,
         except a label hold for a label that already rejected.
    4.   Hold a comment no model read: its ``language`` is one no scorer was made for
         (``language_supported`` false) and either ``unsupported_language`` is ``hold``
         or there are no scores. This holds a trusted author's comment too: nothing
         unread is approved. Its reasons: ``unsupported_language``, then steps 6-10's.
    5.   Approve a trusted author's comment (hold rules are skipped).
    6-11. Hold when the author is on premoderation, has fewer than
         ``new_author_premod`` approved comments, the body has a suspect word, a
         label score reaches ``hold_at``, ``hold_links`` is on and the body has a
         link, or the effective mode (``article_mode`` over ``settings.mode``) is
         ``pre``. The reasons list every hold rule that fired, in that order.
    12.  Otherwise approve, with no reasons.

    A comment scored although no scorer was made for its language (``score``) ends its
    reasons, whatever the decision, with ``unsupported_language``.

    Labels missing from ``scores`` are not checked; scores for labels without a
    threshold are ignored. Thresholds count on equality.
    """
    unsupported: list[dict[str, Any]] = []
    if not language_supported:
        unsupported.append({"code": "unsupported_language", "language": language})
    unread = bool(unsupported) and (
        settings.unsupported_language == UnsupportedLanguage.HOLD or not scores
    )
    rejects: list[dict[str, Any]] = []
    if author_status == AuthorStatus.BANNED:
        rejects.append({"code": "author_banned"})
    rejects.extend({"code": "banned_word", "word": w} for w in settings.banned_words.find(body))
    over_reject = _over(scores, settings.reject_at)
    rejects.extend(over_reject)

    # The hold findings (steps 6-10), in precedence order: a rejection lists them too,
    # except a label hold for a label that already rejected.
    holds: list[dict[str, Any]] = []
    if author_status == AuthorStatus.PREMOD:
        holds.append({"code": "author_premod"})
    if settings.new_author_premod > 0 and author_approved_count < settings.new_author_premod:
        holds.append({"code": "new_author"})
    holds.extend({"code": "suspect_word", "word": w} for w in settings.suspect_words.find(body))
    holds.extend(_over(scores, settings.hold_at, {reason["label"] for reason in over_reject}))
    if settings.hold_links and has_link(body):
        holds.append({"code": "link"})

    if rejects:
        return Decision(CommentStatus.REJECTED, rejects + holds + unsupported)
    if unread:
        return Decision(CommentStatus.HELD, unsupported + holds)
    if author_status == AuthorStatus.TRUSTED:
        return Decision(CommentStatus.APPROVED, [{"code": "author_trusted"}, *unsupported])

    mode = settings.mode if article_mode is None else article_mode
    if mode == Mode.PRE:
        holds.append({"code": "premoderation"})
    if holds:
        return Decision(CommentStatus.HELD, holds + unsupported)
    return Decision(CommentStatus.APPROVED, unsupported)
