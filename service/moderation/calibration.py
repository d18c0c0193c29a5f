"""Calibration: how well thresholds separate what moderators rejected, and better ones.

Pure functions over plain data (no Flask, no database): labelled examples in, figures and
suggested thresholds out. "Not approved" means a score at or above a threshold; the truth
is the moderator's verdict (``rejected`` True when a moderator rejected the comment).

Confidence intervals:

- Precision and recall are binomial proportions (true positives out of flagged, out of
  rejected), so they get the Wilson score interval (Wilson 1927; recommended over the
  normal "Wald" interval by Brown, Cai and DasGupta, "Interval Estimation for a Binomial
  Proportion", Statistical Science 2001): it stays inside [0, 1] and keeps its coverage at
  0 or n successes, which is exactly where a reject threshold's precision sits.
- F1 is no proportion, so it gets a percentile bootstrap (Efron and Tibshirani 1993).
  Resampling n comments with replacement at a fixed threshold is the same as drawing the
  four cells of its confusion matrix from one multinomial, so each resample costs O(1)
  whatever n is (numpy's ``Generator.multinomial``), with a fixed seed so one answer reads
  the same twice.

Figures for *suggested* thresholds are measured on the decisions that chose them, so they
are optimistic; the simulation and ``bench/calibration.py`` measure on other comments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

# Thresholds are suggested to this many decimals, rounded down so that every comment the
# sweep counted at a score is still counted at the rounded threshold.
DECIMALS = 4
BOOTSTRAP_SEED = 20261201


@dataclass(frozen=True)
class Rules:
    """What counts as enough evidence and what the suggestions aim for."""

    min_decisions: int = 200  # below this many labelled comments of a label: no figures
    target_precision: float = 0.95  # suggested reject_at: lowest upheld at this precision
    target_recall: float = 0.0  # suggested hold_at reaches this recall; 0 = maximise F1
    confidence: float = 0.95
    bootstrap: int = 1000  # resamples for F1's interval


@dataclass(frozen=True)
class Counts:
    """The confusion matrix of one threshold against moderators' verdicts."""

    tp: int  # flagged, moderator rejected
    fp: int  # flagged, moderator approved (an auto-rejection here is overturned)
    fn: int  # not flagged, moderator rejected
    tn: int  # not flagged, moderator approved

    @property
    def flagged(self) -> int:
        return self.tp + self.fp

    @property
    def positives(self) -> int:
        return self.tp + self.fn


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / trials``; None for no trials."""
    if trials <= 0:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def f1_of(tp: Any, fp: Any, fn: Any) -> Any:
    """F1 = 2TP / (2TP + FP + FN), 0 where nothing is flagged or rejected (scalars or arrays)."""
    denominator = 2 * tp + fp + fn
    return np.divide(
        2 * tp, denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0
    )


def f1_interval(counts: Counts, rules: Rules) -> tuple[float, float] | None:
    """Percentile bootstrap interval of F1, resampling the confusion matrix's cells."""
    n = counts.tp + counts.fp + counts.fn + counts.tn
    if n == 0:
        return None
    cells = np.array([counts.tp, counts.fp, counts.fn, counts.tn], dtype=float) / n
    draws = np.random.default_rng(BOOTSTRAP_SEED).multinomial(n, cells, size=rules.bootstrap)
    f1 = f1_of(draws[:, 0].astype(float), draws[:, 1].astype(float), draws[:, 2].astype(float))
    tail = (1 - rules.confidence) / 2 * 100
    low, high = np.percentile(f1, [tail, 100 - tail])
    return float(low), float(high)


def _figure(value: float | None, interval: tuple[float, float] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    low, high = interval if interval else (None, None)
    return {
        "value": round(value, 4),
        "low": None if low is None else round(low, 4),
        "high": None if high is None else round(high, 4),
    }


def figures(counts: Counts, rules: Rules) -> dict[str, Any]:
    """Precision, recall and F1 (each with its interval) and the confusion counts."""
    precision = counts.tp / counts.flagged if counts.flagged else None
    recall = counts.tp / counts.positives if counts.positives else None
    f1 = float(f1_of(np.float64(counts.tp), np.float64(counts.fp), np.float64(counts.fn)))
    return {
        "precision": _figure(precision, wilson(counts.tp, counts.flagged, rules.confidence)),
        "recall": _figure(recall, wilson(counts.tp, counts.positives, rules.confidence)),
        "f1": _figure(f1, f1_interval(counts, rules)),
        "flagged": counts.flagged,
        "upheld": counts.tp,
        "overturned": counts.fp,
        "missed": counts.fn,
    }


class Sweep:
    """One label's scores sorted high to low, with running counts at every distinct score."""

    def __init__(self, scores: np.ndarray, rejected: np.ndarray) -> None:
        order = np.argsort(-scores, kind="stable")
        ordered = scores[order]
        hits = rejected[order].astype(np.int64)
        # The last index of each run of equal scores: a threshold there flags the whole run.
        last = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
        self.thresholds = ordered[last]
        self.tp = np.cumsum(hits)[last]
        self.fp = (last + 1) - self.tp
        self.positives = int(hits.sum())
        self.total = len(scores)
        self.scores = scores
        self.rejected = rejected

    def counts(self, threshold: float | None) -> Counts:
        """The confusion matrix of flagging scores at or above ``threshold`` (None: none)."""
        flagged = (
            np.zeros(self.total, dtype=bool) if threshold is None else self.scores >= threshold
        )
        tp = int(np.count_nonzero(flagged & self.rejected))
        fp = int(np.count_nonzero(flagged)) - tp
        fn = self.positives - tp
        return Counts(tp, fp, fn, self.total - tp - fp - fn)

    def best_hold(self, rules: Rules) -> float | None:
        """The threshold of best F1 (the highest on ties), or the highest reaching the recall
        target; None when moderators rejected none of these comments."""
        if self.positives == 0:
            return None
        if rules.target_recall > 0:
            reached = np.flatnonzero(self.tp >= rules.target_recall * self.positives)
            return _round_down(float(self.thresholds[reached[0]]))
        f1 = f1_of(self.tp.astype(float), self.fp.astype(float), (self.positives - self.tp))
        return _round_down(float(self.thresholds[int(np.argmax(f1))]))

    def lowest_upheld(self, floor: float | None, rules: Rules) -> float | None:
        """The lowest threshold, not below ``floor``, whose flagged comments moderators
        rejected at ``target_precision``; None when no threshold reaches it."""
        precision = self.tp / (self.tp + self.fp)
        ok = precision >= rules.target_precision
        if floor is not None:
            ok &= self.thresholds >= floor
        found = np.flatnonzero(ok)
        if not len(found):
            return None
        threshold = _round_down(float(self.thresholds[found[-1]]))
        return threshold if floor is None else max(threshold, floor)


def _round_down(value: float) -> float:
    scale = 10**DECIMALS
    # round() first: 0.57 * 10000 is 5699.999999999999 in binary floating point.
    return math.floor(round(value * scale, 6)) / scale


def _label_report(
    sweep: Sweep, hold_at: float | None, reject_at: float | None, rules: Rules
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "decisions": sweep.total,
        "rejected": sweep.positives,
        "enough": sweep.total >= rules.min_decisions,
        "current": {"hold_at": hold_at, "reject_at": reject_at, "hold": None, "reject": None},
        "suggested": None,
    }
    if not report["enough"]:
        report["message"] = (
            f"Not enough decisions: {sweep.total} of the {rules.min_decisions} needed."
        )
        return report
    report["current"]["hold"] = figures(sweep.counts(hold_at), rules)
    report["current"]["reject"] = figures(sweep.counts(reject_at), rules)
    hold = sweep.best_hold(rules)
    reject = sweep.lowest_upheld(hold, rules)
    report["suggested"] = {
        "hold_at": hold,
        "reject_at": reject,
        "hold": figures(sweep.counts(hold), rules) if hold is not None else None,
        "reject": figures(sweep.counts(reject), rules) if reject is not None else None,
    }
    return report


def calibrate(
    examples: Sequence[tuple[Mapping[str, float], bool]],
    labels: Iterable[str],
    hold_at: Mapping[str, float | None],
    reject_at: Mapping[str, float | None],
    rules: Rules | None = None,
) -> dict[str, dict[str, Any]]:
    """Per label: decisions, current figures and suggested thresholds with their figures.

    ``examples`` are (scores, rejected-by-moderator) pairs; an example counts for a
    label only when it has a score for it. Labels without a threshold are figured as
    never flagging.
    """
    labels = list(labels)
    columns = {
        label: np.fromiter(
            (float(s.get(label, math.nan)) for s, _ in examples), dtype=float, count=len(examples)
        )
        for label in labels
    }
    rejected = np.fromiter((bool(r) for _, r in examples), dtype=bool, count=len(examples))
    return calibrate_columns(columns, rejected, hold_at, reject_at, rules)


def calibrate_columns(
    columns: Mapping[str, np.ndarray],
    rejected: np.ndarray,
    hold_at: Mapping[str, float | None],
    reject_at: Mapping[str, float | None],
    rules: Rules | None = None,
) -> dict[str, dict[str, Any]]:
    """calibrate() over columns: label → scores (NaN where unscored), and the verdicts."""
    rules = rules or Rules()
    report = {}
    for label, column in columns.items():
        scored = ~np.isnan(column)
        sweep = Sweep(column[scored], rejected[scored])
        report[label] = _label_report(sweep, hold_at.get(label), reject_at.get(label), rules)
    return report


def agreement(
    flagged: Sequence[bool], rejected: Sequence[bool], rules: Rules | None = None
) -> dict[str, Any]:
    """Figures of any verdict ("not approved") against moderators' (rejected) ones."""
    rules = rules or Rules()
    tp = sum(1 for f, r in zip(flagged, rejected, strict=True) if f and r)
    fp = sum(1 for f, r in zip(flagged, rejected, strict=True) if f and not r)
    fn = sum(1 for f, r in zip(flagged, rejected, strict=True) if r and not f)
    counts = Counts(tp, fp, fn, len(flagged) - tp - fp - fn)
    out = {"decisions": len(flagged), "enough": len(flagged) >= rules.min_decisions}
    return {**out, **figures(counts, rules)} if out["enough"] else out
