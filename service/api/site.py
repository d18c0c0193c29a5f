"""The key's own site: moderation settings (admin), validated and audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api import cursor
from service.api.common import CleanString, PageArgs
from service.api.schemas import ModerationSettings, settings_or_422
from service.auth import Role, actor_name, require
from service.errors import abort
from service.extensions import db
from service.labels import scorer_of
from service.models import Site, SiteEvent
from service.moderation.policy import SITE_FIELDS, UnsupportedLanguage, shown, thresholds

blp = Blueprint(
    "site",
    __name__,
    url_prefix="/v1/site",
    description="The moderation settings of the key's site.",
)
SECURITY = [{"bearerAuth": ["admin"]}]  # the least role allowed (OpenAPI 3.1 roles)
LANGUAGE_RE = r"^[a-z]{2,3}$"
# The worker's scorer grammar (workers/scorers.py); whether one is loaded, workers decide.
SCORER_RE = r"^(profanity-check|detoxify:\S{1,300})$"
SCORER_HELP = "Expected a scorer spec: profanity-check or detoxify:<model or checkpoint path>."
LANGUAGES_MAX = 200
BROWSER_SUBMISSIONS = ("off", "sso", "anonymous")


def _origin(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise ma.ValidationError("Expected an origin like https://news.example (no path).")


class SiteSettings(ModerationSettings):
    name = CleanString(validate=ma.validate.Length(min=1, max=200))
    origins = ma.fields.List(
        ma.fields.String(validate=[ma.validate.Length(max=300), _origin]),
        metadata={"description": "Browser origins allowed to read public comment lists."},
    )
    lazy_articles = ma.fields.Boolean(
        metadata={"description": "Create unknown articles on their first comment."}
    )
    public_reads = ma.fields.Boolean(
        metadata={"description": "Allow reading approved comments without a key (`?site=`)."}
    )
    language_scorers = ma.fields.Dict(
        keys=ma.fields.String(
            validate=ma.validate.Regexp(LANGUAGE_RE, error="Expected a language code like fr.")
        ),
        values=ma.fields.String(
            validate=ma.validate.Regexp(SCORER_RE, error=SCORER_HELP),
        ),
        validate=ma.validate.Length(max=LANGUAGES_MAX),
        metadata={
            "description": "Language (ISO 639-1 code) → the scorer its comments go to, one the "
            'workers load (`CIVILITY_SCORERS`), e.g. `{"de": "detoxify:multilingual"}`: '
            "the site vouches that it reads the language. Replaced whole by PATCH."
        },
    )
    unsupported_language = ma.fields.String(
        validate=ma.validate.OneOf([u.value for u in UnsupportedLanguage]),
        metadata={
            "description": "A comment in a language no loaded scorer reads: `hold` (the "
            "default) holds it unscored (reason `unsupported_language`); `score` has the "
            "fallback language's scorer read it, the reason recorded."
        },
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


# What GET shows and PATCH may change: every field of the schema.
SETTINGS = tuple(SiteSettings().fields)


class SiteOut(SiteSettings):
    id = ma.fields.Integer()
    scorer = ma.fields.String(
        metadata={
            "description": "The scorer whose defaults fill in thresholds not set: the model "
            "of the site's newest scored comment, a live worker's, or the configured spec."
        }
    )
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


def render(site: Site) -> dict[str, Any]:
    """The site with thresholds shown as applied (defaults filled in)."""
    out = {name: getattr(site, name) for name in (*SETTINGS, "id", "created_at", "updated_at")}
    out["scorer"] = scorer_of(site.id)
    hold_at, reject_at = thresholds(site.hold_at, site.reject_at, out["scorer"])
    out["hold_at"], out["reject_at"] = shown(hold_at), shown(reject_at)
    out["language_scorers"] = site.language_scorers or {}
    out["embed_secret_set"] = bool(site.embed_secret)
    out["embed_previous_secret_expires_at"] = site.embed_previous_secret_expires_at
    return out


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
        # Validated as the policy will read it: every setting, the scorer's defaults under.
        stored = {name: getattr(site, name) for name in SITE_FIELDS}
        settings_or_422({**stored, **fields}, scorer_of(site.id))
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
        query = sa.select(SiteEvent).where(SiteEvent.site_id == g.site.id)
        items, next_cursor = cursor.newest_first(
            query, SiteEvent.id, args.get("cursor"), cursor.page_limit(args)
        )
        return {"items": items, "next_cursor": next_cursor}
