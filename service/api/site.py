"""The key's own site: moderation settings (admin), validated and audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api.common import CleanString, PageArgs, id_cursor, page_size
from service.auth import Role, actor_name, require
from service.errors import abort
from service.extensions import db
from service.models import Site, SiteEvent
from service.moderation.policy import DEFAULT_HOLD_AT, DEFAULT_REJECT_AT, LABELS
from service.moderation.states import Mode

blp = Blueprint(
    "site",
    __name__,
    url_prefix="/v1/site",
    description="The moderation settings of the key's site.",
)
SECURITY = [{"bearerAuth": ["admin"]}]  # the least role allowed (OpenAPI 3.1 roles)
SETTINGS = (
    "name",
    "origins",
    "mode",
    "hold_at",
    "reject_at",
    "banned_words",
    "suspect_words",
    "hold_links",
    "new_author_premod",
    "requeue_reports",
    "lazy_articles",
    "public_reads",
    "browser_submissions",
)
BROWSER_SUBMISSIONS = ("off", "sso", "anonymous")
THRESHOLD_HELP = (
    "Label → probability in [0, 1] at which the policy {verb}; null turns the "
    "label off. PATCH changes only the labels given."
)


def _threshold_map(verb: str) -> ma.fields.Dict:
    return ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(LABELS)),
        values=ma.fields.Float(
            allow_none=True, allow_nan=False, validate=ma.validate.Range(min=0, max=1)
        ),
        metadata={"description": THRESHOLD_HELP.format(verb=verb)},
    )


class WordList(ma.fields.List):
    """A bounded list of words or phrases (CIVILITY_SITE_WORDS_MAX)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(CleanString(validate=ma.validate.Length(min=1, max=100)), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        words = super()._deserialize(value, attr, data, **kwargs)
        limit = current_app.config["SITE_WORDS_MAX"]
        if len(words) > limit:
            raise ma.ValidationError(f"At most {limit} entries; this has {len(words)}.")
        return list(dict.fromkeys(w.strip() for w in words if w.strip()))


def _origin(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise ma.ValidationError("Expected an origin like https://news.example (no path).")


class SiteSettings(ma.Schema):
    name = CleanString(validate=ma.validate.Length(min=1, max=200))
    origins = ma.fields.List(
        ma.fields.String(validate=[ma.validate.Length(max=300), _origin]),
        metadata={"description": "Browser origins allowed to read public comment lists."},
    )
    mode = ma.fields.String(
        validate=ma.validate.OneOf([m.value for m in Mode]),
        metadata={
            "description": "`post`: publish unless a rule holds or rejects; `pre`: hold "
            "everything the policy would approve."
        },
    )
    hold_at = _threshold_map("holds a comment for review")
    reject_at = _threshold_map("rejects a comment")
    banned_words = WordList(metadata={"description": "Words/phrases that reject a comment."})
    suspect_words = WordList(metadata={"description": "Words/phrases that hold a comment."})
    hold_links = ma.fields.Boolean(metadata={"description": "Hold comments containing links."})
    new_author_premod = ma.fields.Integer(
        validate=ma.validate.Range(min=0, max=1000),
        metadata={
            "description": "Hold an author's comments until this many were approved (0 = off)."
        },
    )
    requeue_reports = ma.fields.Integer(
        validate=ma.validate.Range(min=0, max=1000),
        metadata={
            "description": "Open reports that send an approved comment back to held (0 = never)."
        },
    )
    lazy_articles = ma.fields.Boolean(
        metadata={"description": "Create unknown articles on their first comment."}
    )
    public_reads = ma.fields.Boolean(
        metadata={"description": "Allow reading approved comments without a key (`?site=`)."}
    )
    browser_submissions = ma.fields.String(
        validate=ma.validate.OneOf(BROWSER_SUBMISSIONS),
        metadata={
            "description": "What browsers (the embed widget) may write: `off` (reads only), "
            "`sso` (readers signed in by the site's HS256 token) or `anonymous` (a name)."
        },
    )

    @ma.validates("origins")
    def _origins_bounded(self, value: list[str], **kwargs: Any) -> None:
        limit = current_app.config["SITE_ORIGINS_MAX"]
        if len(value) > limit:
            raise ma.ValidationError(f"At most {limit} origins.")


class SiteOut(SiteSettings):
    id = ma.fields.Integer()
    embed_secret_set = ma.fields.Boolean(
        metadata={"description": "Whether an embed secret exists (POST /v1/site/embed-secret)."}
    )
    embed_previous_secret_expires_at = ma.fields.AwareDateTime(
        allow_none=True, metadata={"description": "Until then the previous secret verifies too."}
    )
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class SiteEventOut(ma.Schema):
    id = ma.fields.Integer()
    actor = ma.fields.String()
    changes = ma.fields.Dict(metadata={"description": "Setting → [old value, new value]."})
    created_at = ma.fields.AwareDateTime()


class SiteEventPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SiteEventOut))
    next_cursor = ma.fields.String(allow_none=True)


def effective(overrides: dict[str, float | None], defaults: dict[str, float]) -> dict:
    """Thresholds as the policy applies them: defaults, then the site's overrides."""
    return {**defaults, **(overrides or {})}


def render(site: Site) -> dict[str, Any]:
    """The site with thresholds shown as applied (defaults filled in)."""
    out = {name: getattr(site, name) for name in (*SETTINGS, "id", "created_at", "updated_at")}
    out["hold_at"] = effective(site.hold_at, DEFAULT_HOLD_AT)
    out["reject_at"] = effective(site.reject_at, DEFAULT_REJECT_AT)
    out["embed_secret_set"] = bool(site.embed_secret)
    out["embed_previous_secret_expires_at"] = site.embed_previous_secret_expires_at
    return out


def _check_order(hold_at: dict, reject_at: dict) -> None:
    """422 naming hold_at when a label would hold above where it rejects."""
    wrong = sorted(
        label
        for label in LABELS
        if hold_at.get(label) is not None
        and reject_at.get(label) is not None
        and hold_at[label] > reject_at[label]
    )
    if wrong:
        abort(
            422,
            "Invalid hold_at: must not be above reject_at for " + ", ".join(wrong) + ".",
            errors={"json": {"hold_at": {label: ["Above reject_at."] for label in wrong}}},
        )


@blp.route("")
class SiteResource(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.response(200, SiteOut)
    def get(self):
        """Read the site's moderation settings (thresholds with defaults filled in)."""
        return render(g.site)

    @blp.doc(security=SECURITY)
    @blp.arguments(SiteSettings)
    @blp.response(200, SiteOut)
    def patch(self, fields: dict):
        """Change the settings given; thresholds merge per label; the change is audited."""
        site: Site = g.site
        for name in ("hold_at", "reject_at"):
            if name in fields:
                fields[name] = {**(getattr(site, name) or {}), **fields[name]}
        hold_at = effective(fields.get("hold_at", site.hold_at), DEFAULT_HOLD_AT)
        reject_at = effective(fields.get("reject_at", site.reject_at), DEFAULT_REJECT_AT)
        _check_order(hold_at, reject_at)
        if fields.get("browser_submissions") == "sso" and not site.embed_secret:
            abort(
                422,
                "Invalid browser_submissions: sso needs an embed secret; make one with "
                "POST /v1/site/embed-secret first.",
                errors={"json": {"browser_submissions": ["Make an embed secret first."]}},
            )
        changes = {
            name: [getattr(site, name), value]
            for name, value in fields.items()
            if getattr(site, name) != value
        }
        if changes:
            for name, value in fields.items():
                setattr(site, name, value)
            db.session.add(SiteEvent(site_id=site.id, actor=actor_name(), changes=changes))
            db.session.commit()
        return render(site)


@blp.route("/events")
class SiteEvents(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, SiteEventPage)
    def get(self, args: dict):
        """The audit trail of settings changes, newest first."""
        cfg = current_app.config
        limit = page_size(args.get("limit"), cfg["PAGE_SIZE"], cfg["PAGE_SIZE_MAX"])
        query = sa.select(SiteEvent).where(SiteEvent.site_id == g.site.id)
        if args.get("cursor"):
            query = query.where(SiteEvent.id < id_cursor(args["cursor"]))
        rows = db.session.scalars(query.order_by(SiteEvent.id.desc()).limit(limit + 1)).all()
        items = rows[:limit]
        return {"items": items, "next_cursor": str(items[-1].id) if len(rows) > limit else None}
