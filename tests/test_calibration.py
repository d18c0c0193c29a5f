"""Calibration's statistics: one table of hand-computed cases, and the Wilson interval."""

from __future__ import annotations

from typing import Any

import pytest

from service.moderation.calibration import Rules, agreement, calibrate, wilson

# Ten comments, high to low: R = a moderator rejected it, A = approved. Four rejected.
#   score  0.9 0.8 0.7 0.6 0.5 0.4 0.3 0.2 0.1 0.05
#   verdict R   R   A   R   A   R   A   A   A   A
# Flagging at t: 0.9 → F1 2/5, 0.8 → 4/6, 0.7 → 4/7, 0.6 → 6/8, 0.5 → 6/9, 0.4 → 8/10 (best),
# 0.3 → 8/11, … Precision: 1 at 0.9 and 0.8, 2/3 at 0.7, 3/4 at 0.6, 3/5 at 0.5, 4/6 at 0.4.
TEN = [(0.9, 1), (0.8, 1), (0.7, 0), (0.6, 1), (0.5, 0), (0.4, 1), (0.3, 0), (0.2, 0)]
TEN += [(0.1, 0), (0.05, 0)]


def case(
    id: str,
    pairs: list[tuple[float, int]],
    *,
    hold_at: float | None = 0.5,
    reject_at: float | None = 0.9,
    expect: dict[str, Any],
    **rules: Any,
) -> Any:
    """One row: (score, rejected) pairs of the label `toxicity`, the thresholds now, rules."""
    examples = [({"toxicity": score}, bool(rejected)) for score, rejected in pairs]
    settings = (examples, hold_at, reject_at, Rules(**{"min_decisions": 1, **rules}))
    return pytest.param(*settings, expect, id=id)


CASES = [
    case(
        "best-f1-hold-and-lowest-reject-upheld-at-95",
        TEN,
        expect={
            "suggested": (0.4, 0.8),
            "current_hold": (0.6, 0.75, 0.6667, 2),  # precision, recall, f1, overturned
            "current_reject": (1.0, 0.25, 0.4, 0),
            "suggested_hold": (0.6667, 1.0, 0.8, 2),
            "suggested_reject": (1.0, 0.5, 0.6667, 0),
        },
    ),
    case(
        "a-lower-precision-target-rejects-lower",
        TEN,
        target_precision=0.75,
        expect={"suggested": (0.4, 0.6), "suggested_reject": (0.75, 0.75, 0.75, 1)},
    ),
    case(
        "a-recall-target-picks-the-highest-threshold-reaching-it",
        TEN,
        target_recall=0.75,
        expect={"suggested": (0.6, 0.8), "suggested_hold": (0.75, 0.75, 0.75, 1)},
    ),
    case(
        "reject-is-never-below-hold",
        [(0.9, 1), (0.8, 1), (0.7, 1), (0.6, 0), (0.5, 0), (0.4, 1), (0.3, 0), (0.2, 0), (0.1, 0)],
        target_precision=0.5,
        # Best F1 at 0.7 (6/7); precision stays >= 0.5 down to 0.2 (4/8), but not below hold.
        expect={"suggested": (0.7, 0.7)},
    ),
    case(
        "equal-scores-are-flagged-together",
        [(0.7, 1), (0.5, 1), (0.5, 0), (0.5, 0), (0.1, 0)],
        expect={
            "suggested": (0.7, 0.7),
            "current_hold": (0.5, 1.0, 0.6667, 2),
        },  # F1 ties: the higher
    ),
    case(
        "every-comment-rejected-holds-and-rejects-at-the-lowest-score",
        [(0.2, 1), (0.1, 1)],
        expect={"suggested": (0.1, 0.1), "suggested_hold": (1.0, 1.0, 1.0, 0)},
    ),
    case(
        "nothing-rejected-suggests-nothing",
        [(0.9, 0), (0.3, 0)],
        expect={"suggested": (None, None), "current_reject": (0.0, None, 0.0, 1)},
    ),
    case(
        "a-label-turned-off-flags-nothing",
        TEN,
        hold_at=None,
        expect={"current_hold": (None, 0.0, 0.0, 0)},
    ),
    case(
        "thresholds-are-rounded-down-to-four-decimals",
        [(0.57, 1), (0.123456, 1), (0.1, 0)],
        expect={"suggested": (0.1234, 0.1234)},
    ),
    case(
        "below-the-minimum-no-figures-and-no-suggestion",
        TEN,
        min_decisions=11,
        expect={"enough": False},
    ),
]


def values(figures: dict[str, Any] | None) -> tuple:
    figure = lambda name: None if figures[name] is None else figures[name]["value"]  # noqa: E731
    return (figure("precision"), figure("recall"), figure("f1"), figures["overturned"])


@pytest.mark.parametrize(("examples", "hold_at", "reject_at", "rules", "expect"), CASES)
def test_calibration_table(examples, hold_at, reject_at, rules, expect) -> None:
    report = calibrate(
        examples, ["toxicity"], {"toxicity": hold_at}, {"toxicity": reject_at}, rules
    )
    label = report["toxicity"]
    assert label["decisions"] == len(examples)
    assert label["rejected"] == sum(1 for _, rejected in examples if rejected)
    if expect.get("enough") is False:
        assert label["enough"] is False
        assert label["suggested"] is None
        assert label["current"]["hold"] is None
        assert "Not enough decisions: 10 of the 11" in label["message"]
        return
    assert label["enough"] is True
    suggested = label["suggested"]
    if "suggested" in expect:
        assert (suggested["hold_at"], suggested["reject_at"]) == expect["suggested"]
    for key, side, kind in (
        ("current_hold", label["current"], "hold"),
        ("current_reject", label["current"], "reject"),
        ("suggested_hold", suggested, "hold"),
        ("suggested_reject", suggested, "reject"),
    ):
        if key in expect:
            assert values(side[kind]) == expect[key], key


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (3, 5, 0.2307, 0.8824),  # Brown, Cai and DasGupta's tables; any Wilson calculator
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (50, 100, 0.4038, 0.5962),
    ],
)
def test_wilson_interval_matches_published_values(successes, trials, low, high) -> None:
    interval = wilson(successes, trials)
    assert interval == pytest.approx((low, high), abs=1e-4)


def test_every_interval_holds_its_figure_and_repeats_exactly() -> None:
    examples = [({"toxicity": s}, bool(r)) for s, r in TEN * 30]
    first = calibrate(examples, ["toxicity"], {"toxicity": 0.5}, {"toxicity": 0.9}, Rules())
    again = calibrate(examples, ["toxicity"], {"toxicity": 0.5}, {"toxicity": 0.9}, Rules())
    assert first == again
    for side in ("current", "suggested"):
        for kind in ("hold", "reject"):
            for name in ("precision", "recall", "f1"):
                figure = first["toxicity"][side][kind][name]
                assert 0 <= figure["low"] <= figure["value"] <= figure["high"] <= 1, (side, name)
                assert figure["low"] < figure["high"]


def test_labels_a_model_does_not_score_are_left_out_of_their_counts() -> None:
    examples = [({"toxicity": 0.9, "insult": 0.8}, True), ({"toxicity": 0.1}, False)]
    report = calibrate(examples, ["toxicity", "insult"], {}, {}, Rules(min_decisions=1))
    assert report["toxicity"]["decisions"] == 2
    assert report["insult"]["decisions"] == 1


def test_agreement_counts_any_not_approved_against_moderators() -> None:
    flagged = [True, True, False, False, True]
    rejected = [True, False, True, False, True]
    figures = agreement(flagged, rejected, Rules(min_decisions=5))
    assert (figures["upheld"], figures["overturned"], figures["missed"]) == (2, 1, 1)
    assert figures["precision"]["value"] == figures["recall"]["value"] == 0.6667
    assert agreement(flagged, rejected, Rules(min_decisions=6)) == {"decisions": 5, "enough": False}
