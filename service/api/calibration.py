"""Calibration from moderators' decisions, and simulation of settings before they are saved."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import marshmallow as ma
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service import labels, simulation
from service.api.common import DateTimeIn
from service.api.schemas import ModerationSettings, settings_or_422
from service.auth import Role, require
from service.errors import abort
from service.models import Site, utcnow
from service.moderation.calibration import Rules, calibrate_columns
from service.moderation.policy import LABELS, SITE_FIELDS, PolicySettings, shown, thresholds

blp = Blueprint(
    "calibration",
    __name__,
    url_prefix="/v1/site",
    description="What moderators' decisions say about the thresholds, and what an edit would do.",
)


class WindowArgs(ma.Schema):
    since = DateTimeIn(
        metadata={
            "description": "Start (ISO 8601); default CIVILITY_CALIBRATION_DAYS (90) days "
            "before until."
        },
    )
    until = DateTimeIn(metadata={"description": "End, exclusive; default now."})


class CalibrationArgs(WindowArgs):
    model = ma.fields.String(
        validate=ma.validate.Length(min=1, max=200),
        metadata={
            "description": "The model (`name@version`) whose scores to calibrate; default the "
            "site's current one (`scorer` in GET /v1/site)."
        },
    )


class SimulateIn(ModerationSettings, WindowArgs):
    limit = ma.fields.Integer(
        validate=ma.validate.Range(min=1),
        metadata={
            "description": "Newest comments to replay; default CIVILITY_SIMULATE_LIMIT, at most "
            "CIVILITY_SIMULATE_LIMIT_MAX."
        },
    )


class Figure(ma.Schema):
    value = ma.fields.Float()
    low = ma.fields.Float(allow_none=True, metadata={"description": "Lower confidence bound."})
    high = ma.fields.Float(allow_none=True, metadata={"description": "Upper confidence bound."})


class Figures(ma.Schema):
    precision = ma.fields.Nested(
        Figure,
        allow_none=True,
        metadata={"description": "Flagged that moderators rejected (Wilson interval)."},
    )
    recall = ma.fields.Nested(
        Figure,
        allow_none=True,
        metadata={"description": "Rejected by moderators that was flagged (Wilson interval)."},
    )
    f1 = ma.fields.Nested(Figure, allow_none=True, metadata={"description": "Bootstrap interval."})
    flagged = ma.fields.Integer(metadata={"description": "Comments at or above the threshold."})
    upheld = ma.fields.Integer(metadata={"description": "Flagged that moderators rejected."})
    overturned = ma.fields.Integer(metadata={"description": "Flagged that moderators approved."})
    missed = ma.fields.Integer(metadata={"description": "Rejected by moderators, not flagged."})


class ThresholdFigures(ma.Schema):
    hold_at = ma.fields.Float(allow_none=True)
    reject_at = ma.fields.Float(allow_none=True)
    hold = ma.fields.Nested(Figures, allow_none=True, metadata={"description": "At hold_at."})
    reject = ma.fields.Nested(Figures, allow_none=True, metadata={"description": "At reject_at."})


class LabelCalibration(ma.Schema):
    label = ma.fields.String()
    decisions = ma.fields.Integer(metadata={"description": "Labelled comments with this score."})
    rejected = ma.fields.Integer(metadata={"description": "Of them, rejected by moderators."})
    enough = ma.fields.Boolean(
        metadata={"description": "False below CIVILITY_CALIBRATION_MIN_DECISIONS: no figures."}
    )
    message = ma.fields.String(metadata={"description": "Why there are no figures."})
    current = ma.fields.Nested(ThresholdFigures)
    suggested = ma.fields.Nested(
        ThresholdFigures,
        allow_none=True,
        metadata={
            "description": "hold_at of best F1 (or reaching the target recall); reject_at the "
            "lowest upheld at the target precision, never below hold_at; null when not enough."
        },
    )


class CalibrationOut(ma.Schema):
    model = ma.fields.String(allow_none=True)
    since = ma.fields.AwareDateTime()
    until = ma.fields.AwareDateTime()
    decisions = ma.fields.Integer(metadata={"description": "Labelled comments in the window."})
    rejected = ma.fields.Integer()
    sources = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "Labels per source (`moderator`: the newest decision)."},
    )
    min_decisions = ma.fields.Integer()
    target_precision = ma.fields.Float()
    target_recall = ma.fields.Float()
    labels = ma.fields.List(ma.fields.Nested(LabelCalibration))


class Agreement(Figures):
    decisions = ma.fields.Integer(metadata={"description": "Replayed comments with a verdict."})
    enough = ma.fields.Boolean()


class Move(ma.Schema):
    from_ = ma.fields.String(attribute="from", data_key="from")
    to = ma.fields.String()
    count = ma.fields.Integer()
    moderator_rejected = ma.fields.Integer()
    moderator_approved = ma.fields.Integer()
    sample_ids = ma.fields.List(ma.fields.Integer())


class AgreementPair(ma.Schema):
    current = ma.fields.Nested(Agreement)
    proposed = ma.fields.Nested(Agreement)


class SimulationOut(ma.Schema):
    model = ma.fields.String(allow_none=True)
    since = ma.fields.AwareDateTime()
    until = ma.fields.AwareDateTime()
    limit = ma.fields.Integer()
    replayed = ma.fields.Integer()
    matrix = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer()),
        metadata={"description": "Current outcome → proposed outcome → comments."},
    )
    moves = ma.fields.List(
        ma.fields.Nested(Move), metadata={"description": "Each change of outcome, largest first."}
    )
    agreement = ma.fields.Nested(
        AgreementPair, metadata={"description": "Not approved vs moderator rejected, each side."}
    )


def _window(args: dict[str, Any], location: str) -> tuple[datetime, datetime]:
    """The window asked for, defaults filled in; 422 naming ``since`` when it is not before."""
    until = args.get("until") or utcnow()
    since = args.get("since") or until - timedelta(days=current_app.config["CALIBRATION_DAYS"])
    if since >= until:
        abort(
            422,
            "Invalid since: must be before until.",
            errors={location: {"since": ["Must be before until."]}},
        )
    return since, until


def _rules() -> Rules:
    cfg = current_app.config
    return Rules(
        min_decisions=cfg["CALIBRATION_MIN_DECISIONS"],
        target_precision=cfg["CALIBRATION_TARGET_PRECISION"],
        target_recall=cfg["CALIBRATION_TARGET_RECALL"],
    )


def _in_policy_order(columns: dict[str, Any]) -> dict[str, Any]:
    """The model's labels in the policy's order (then any others)."""
    order = [label for label in LABELS if label in columns]
    return {label: columns[label] for label in order + sorted(set(columns) - set(order))}


@blp.route("/calibration")
class Calibration(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=[{"bearerAuth": ["moderator"]}])
    @blp.arguments(CalibrationArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, CalibrationOut)
    def get(self, args: dict):
        """Precision, recall and F1 of the thresholds against moderators, and better ones."""
        since, until = _window(args, "query")
        site: Site = g.site
        model = args.get("model") or labels.current_model(site.id)
        rules = _rules()
        hold_at, reject_at = thresholds(
            site.hold_at, site.reject_at, model or labels.scorer_of(site.id)
        )
        window = labels.Window(site.id, model or "", since, until)
        labelled = labels.gather(window, current_app.config["CALIBRATION_MAX_DECISIONS"])
        report = calibrate_columns(
            _in_policy_order(labelled.scores),
            labelled.rejected,
            shown(hold_at),
            shown(reject_at),
            rules,
        )
        return {
            "model": model,
            "since": since,
            "until": until,
            "decisions": len(labelled),
            "rejected": int(labelled.rejected.sum()),
            "sources": labelled.sources,
            "min_decisions": rules.min_decisions,
            "target_precision": rules.target_precision,
            "target_recall": rules.target_recall,
            "labels": [{"label": label, **figures} for label, figures in report.items()],
        }


@blp.route("/simulate")
class Simulate(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=[{"bearerAuth": ["admin"]}])
    @blp.arguments(SimulateIn)
    @blp.response(200, SimulationOut)
    def post(self, fields: dict):
        """Replay recent comments with these settings: what would move; nothing changes."""
        cfg = current_app.config
        since, until = _window(fields, "json")
        limit = fields.pop("limit", cfg["SIMULATE_LIMIT"])
        if limit > cfg["SIMULATE_LIMIT_MAX"]:
            abort(
                422,
                f"Invalid limit: at most {cfg['SIMULATE_LIMIT_MAX']}.",
                errors={"json": {"limit": [f"At most {cfg['SIMULATE_LIMIT_MAX']}."]}},
            )
        site: Site = g.site
        model = labels.current_model(site.id)
        scorer = model or labels.scorer_of(site.id)
        now = {name: getattr(site, name) for name in SITE_FIELDS}
        proposed = {**now, **{k: v for k, v in fields.items() if k in SITE_FIELDS}}
        for name in ("hold_at", "reject_at"):
            proposed[name] = {**(now[name] or {}), **(fields.get(name) or {})}
        proposed_settings = settings_or_422(proposed, scorer)
        rows, verdicts = [], {}
        if model:
            rows = simulation.replayable(site.id, model, since, until, limit)
            # Decisions on these comments come after they were written: read them up to now.
            window = labels.Window(site.id, model, since, max(until, utcnow()) + timedelta(1))
            verdicts = labels.gather(window, cfg["CALIBRATION_MAX_DECISIONS"]).verdicts()
        answer = simulation.simulate(
            rows,
            PolicySettings.from_site(now, scorer),
            proposed_settings,
            verdicts,
            sample=cfg["SIMULATE_SAMPLE"],
            rules=_rules(),
        )
        return {"model": model, "since": since, "until": until, "limit": limit, **answer}
