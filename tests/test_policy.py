"""The moderation policy: one table of rules and precedence (settings parsing:
test_policy_settings.py)."""

import json
from typing import Any

import pytest

from service.moderation.policy import (
    LABELS,
    Decision,
    PolicySettings,
    decide,
)
from service.moderation.states import AuthorStatus, CommentStatus, Mode

APPROVED, HELD, REJECTED = CommentStatus.APPROVED, CommentStatus.HELD, CommentStatus.REJECTED
ACTIVE, TRUSTED = AuthorStatus.ACTIVE, AuthorStatus.TRUSTED
PREMOD, BANNED = AuthorStatus.PREMOD, AuthorStatus.BANNED

SITE = {
    "hold_at": {"toxicity": 0.5, "threat": 0.3},
    "reject_at": {"toxicity": 0.9, "threat": 0.8},
    "banned_words": ["kill yourself", "slur"],
    "suspect_words": ["idiot", "stupid"],
}
CLEAN = "Thanks, a thoughtful article."


def code(name: str) -> dict[str, Any]:
    return {"code": name}


def word(name: str, entry: str) -> dict[str, Any]:
    return {"code": name, "word": entry}


def label(name: str, score: float, threshold: float) -> dict[str, Any]:
    return {"code": name, "label": name, "score": score, "threshold": threshold}


def case(
    id: str,
    status: CommentStatus,
    reasons: list[dict[str, Any]],
    *,
    scores: dict[str, float] | None = None,
    body: str = CLEAN,
    author: AuthorStatus = ACTIVE,
    approved: int = 10,
    article_mode: Mode | None = None,
    unsupported: str | None = None,
    **site: Any,
) -> Any:
    """One table row: the inputs to decide() and the decision expected; ``unsupported``
    names the comment's language when no scorer was made for it."""
    settings = PolicySettings.from_mapping({**SITE, **site})
    language = {} if unsupported is None else {"language": unsupported, "language_supported": False}
    inputs = (scores or {}, body, author, approved, settings, article_mode, language)
    return pytest.param(*inputs, Decision(status, reasons), id=id)


@pytest.mark.parametrize(
    ("scores", "body", "author", "approved", "settings", "article_mode", "language", "expected"),
    [
        case("clean_comment_is_approved_without_reasons", APPROVED, []),
        case("low_scores_on_all_labels_approve", APPROVED, [], scores=dict.fromkeys(LABELS, 0.1)),
        # 1. Banned author.
        case("banned_author_is_rejected", REJECTED, [code("author_banned")], author=BANNED),
        case(
            "banned_author_is_rejected_in_pre_mode_without_premoderation_reason",
            REJECTED,
            [code("author_banned")],
            author=BANNED,
            mode="pre",
        ),
        # 2. Banned words.
        case(
            "banned_phrase_rejects",
            REJECTED,
            [word("banned_word", "kill yourself")],
            body="Just KILL yoursélf.",
        ),
        case(
            "banned_word_beats_trusted_author",
            REJECTED,
            [word("banned_word", "slur")],
            body="a slur",
            author=TRUSTED,
        ),
        case(
            "each_banned_word_is_a_reason_in_order_of_occurrence",
            REJECTED,
            [word("banned_word", "slur"), word("banned_word", "kill yourself")],
            body="slur, kill yourself, slur",
        ),
        case("banned_word_inside_another_word_is_ignored", APPROVED, [], body="slurry"),
        case(
            "banned_author_and_banned_word_both_listed",
            REJECTED,
            [code("author_banned"), word("banned_word", "slur")],
            body="slur",
            author=BANNED,
        ),
        # 3. Reject thresholds.
        case(
            "score_above_reject_at_rejects",
            REJECTED,
            [label("toxicity", 0.97, 0.9)],
            scores={"toxicity": 0.97},
        ),
        case(
            "score_equal_to_reject_at_rejects",
            REJECTED,
            [label("toxicity", 0.9, 0.9)],
            scores={"toxicity": 0.9},
        ),
        case(
            "reject_score_beats_trusted_author",
            REJECTED,
            [label("threat", 0.85, 0.8)],
            scores={"threat": 0.85},
            author=TRUSTED,
        ),
        case(
            "label_reasons_follow_label_order_and_round_to_four_places",
            REJECTED,
            [label("toxicity", 0.9123, 0.9), label("threat", 0.8, 0.8)],
            scores={"threat": 0.8, "toxicity": 0.912345678},
        ),
        case(
            "reject_lists_every_reject_rule_then_hold_findings_without_premoderation",
            REJECTED,
            [
                code("author_banned"),
                word("banned_word", "slur"),
                label("toxicity", 0.95, 0.9),
                code("new_author"),
                word("suspect_word", "idiot"),
                label("threat", 0.5, 0.3),
                code("link"),
            ],
            scores={"toxicity": 0.95, "threat": 0.5},
            body="idiot slur, see example.com",
            author=BANNED,
            approved=0,
            new_author_premod=1,
            hold_links=True,
            mode="pre",
        ),
        case(
            "rejected_trusted_author_still_shows_hold_findings",
            REJECTED,
            [word("banned_word", "slur"), word("suspect_word", "stupid")],
            body="stupid slur",
            author=TRUSTED,
        ),
        # 4. Trusted authors skip holds.
        case(
            "trusted_author_is_approved_with_reason",
            APPROVED,
            [code("author_trusted")],
            author=TRUSTED,
        ),
        case(
            "trusted_author_skips_every_hold_rule",
            APPROVED,
            [code("author_trusted")],
            scores={"toxicity": 0.89, "threat": 0.79},
            body="stupid idea, see https://example.com",
            author=TRUSTED,
            approved=0,
            new_author_premod=5,
            hold_links=True,
            mode="pre",
        ),
        case(
            "trusted_author_skips_article_pre_mode",
            APPROVED,
            [code("author_trusted")],
            author=TRUSTED,
            article_mode=Mode.PRE,
        ),
        # 5. Author on premoderation.
        case("premod_author_clean_comment_is_held", HELD, [code("author_premod")], author=PREMOD),
        # 6. New authors.
        case(
            "new_author_below_n_approved_is_held",
            HELD,
            [code("new_author")],
            approved=2,
            new_author_premod=3,
        ),
        case("new_author_at_n_approved_is_approved", APPROVED, [], approved=3, new_author_premod=3),
        case("new_author_premod_zero_is_off", APPROVED, [], approved=0, new_author_premod=0),
        # 7. Suspect words.
        case(
            "suspect_words_hold_each_once_in_order",
            HELD,
            [word("suspect_word", "stupid"), word("suspect_word", "idiot")],
            body="Stupid, STUPID ïdiot",
        ),
        case("suspect_word_inside_another_word_is_ignored", APPROVED, [], body="stupidity"),
        # 8. Hold thresholds.
        case(
            "score_equal_to_hold_at_holds",
            HELD,
            [label("toxicity", 0.5, 0.5)],
            scores={"toxicity": 0.5},
        ),
        case("score_just_below_hold_at_is_approved", APPROVED, [], scores={"toxicity": 0.4999}),
        case(
            "score_between_hold_and_reject_holds",
            HELD,
            [label("toxicity", 0.8999, 0.5)],
            scores={"toxicity": 0.8999},
        ),
        case(
            "severe_label_holds_at_default_threshold",
            HELD,
            [label("identity_attack", 0.3, 0.3)],
            scores={"identity_attack": 0.3},
        ),
        case(
            "toxicity_only_scores_from_fallback_scorer_check_toxicity_only",
            HELD,
            [label("toxicity", 0.6, 0.5)],
            scores={"toxicity": 0.6},
        ),
        case(
            "scores_for_labels_without_thresholds_are_ignored",
            APPROVED,
            [],
            scores={"not_a_label": 1.0, "threat": 0.99},
            hold_at={"threat": None},
            reject_at={"threat": None},
        ),
        # 9. Links.
        case(
            "link_is_held_when_hold_links",
            HELD,
            [code("link")],
            body="more at https://example.org/x",
            hold_links=True,
        ),
        case("link_is_approved_without_hold_links", APPROVED, [], body="https://example.org/x"),
        case("www_address_is_a_link", HELD, [code("link")], body="www.spam.biz", hold_links=True),
        case(
            "bare_domain_is_a_link", HELD, [code("link")], body="go to Example.com", hold_links=True
        ),
        case("short_link_is_a_link", HELD, [code("link")], body="bit.ly/3xYz now", hold_links=True),
        case(
            "abbreviations_and_numbers_are_not_links",
            APPROVED,
            [],
            body="e.g. version 3.5 at 9 a.m., i.e. the U.S. one. Agreed.But no.",
            hold_links=True,
        ),
        case("long_dotted_run_is_not_a_link", APPROVED, [], body="a." * 5000, hold_links=True),
        # 10. Mode.
        case("pre_mode_holds_clean_comment", HELD, [code("premoderation")], mode="pre"),
        case(
            "article_post_mode_beats_site_pre_mode",
            APPROVED,
            [],
            mode="pre",
            article_mode=Mode.POST,
        ),
        case(
            "article_pre_mode_beats_site_post_mode",
            HELD,
            [code("premoderation")],
            mode="post",
            article_mode=Mode.PRE,
        ),
        case(
            "pre_mode_still_rejects_banned_words",
            REJECTED,
            [word("banned_word", "slur")],
            body="slur",
            mode="pre",
        ),
        # Hold reasons all together, in rule order.
        case(
            "every_hold_rule_is_listed_in_rule_order",
            HELD,
            [
                code("author_premod"),
                code("new_author"),
                word("suspect_word", "idiot"),
                label("toxicity", 0.7, 0.5),
                label("threat", 0.4, 0.3),
                code("link"),
                code("premoderation"),
            ],
            scores={"threat": 0.4, "toxicity": 0.7, "insult": 0.1},
            body="idiot: www.example.net",
            author=PREMOD,
            approved=0,
            new_author_premod=1,
            hold_links=True,
            article_mode=Mode.PRE,
        ),
        # 4. No model read it: held whoever wrote it, unless the site scores it anyway.
        case(
            "unread_language_is_held",
            HELD,
            [{"code": "unsupported_language", "language": "de"}],
            unsupported="de",
        ),
        case(
            "unread_language_of_a_trusted_author_is_held_too",
            HELD,
            [{"code": "unsupported_language", "language": "de"}],
            author=TRUSTED,
            unsupported="de",
        ),
        case(
            "unread_language_with_a_banned_word_is_still_rejected",
            REJECTED,
            [word("banned_word", "slur"), {"code": "unsupported_language", "language": "de"}],
            body="du slur",
            unsupported="de",
        ),
        case(
            "unread_language_lists_the_other_hold_findings",
            HELD,
            [{"code": "unsupported_language", "language": "de"}, code("new_author")],
            approved=0,
            new_author_premod=1,
            unsupported="de",
        ),
        case(
            "unsupported_language_scored_anyway_is_approved_with_the_reason",
            APPROVED,
            [{"code": "unsupported_language", "language": "de"}],
            scores={"toxicity": 0.1},
            unsupported="de",
            unsupported_language="score",
        ),
        case(
            "unsupported_language_scored_anyway_holds_on_its_scores",
            HELD,
            [label("toxicity", 0.7, 0.5), {"code": "unsupported_language", "language": "de"}],
            scores={"toxicity": 0.7},
            unsupported="de",
            unsupported_language="score",
        ),
        case(
            "unsupported_language_set_to_score_but_without_scores_is_held",
            HELD,
            [{"code": "unsupported_language", "language": "de"}],
            unsupported="de",
            unsupported_language="score",
        ),
    ],
)
def test_decide(
    scores: dict[str, float],
    body: str,
    author: AuthorStatus,
    approved: int,
    settings: PolicySettings,
    article_mode: Mode | None,
    language: dict[str, Any],
    expected: Decision,
) -> None:
    assert decide(scores, body, author, approved, settings, article_mode, **language) == expected


def test_decision_reasons_are_plain_json() -> None:
    settings = PolicySettings.from_mapping({**SITE, "hold_links": True})
    decision = decide({"toxicity": 0.95}, "slur idiot x.com", BANNED, 0, settings)
    assert json.loads(json.dumps(decision.reasons)) == decision.reasons
    assert json.loads(json.dumps(decision.status)) == "rejected"
