"""Dashboard sessions: an admin lists them and ends one, or all of a key's, at once."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api import cursor
from service.api.common import PageArgs, owned_or_404
from service.auth import PREFIX_LEN, Role, actor_name, end_sessions, require
from service.errors import abort
from service.extensions import db
from service.models import ApiKey, DashboardSession, utcnow

blp = Blueprint(
    "sessions",
    __name__,
    url_prefix="/v1/sessions",
    description="Dashboard sign-ins of this site's keys: who is signed in, and ending them.",
)
SECURITY = [{"bearerAuth": ["admin"]}]  # the least role allowed (OpenAPI 3.1 roles)
KEY_PREFIX_FIELD = ma.fields.String(
    validate=ma.validate.Regexp(r"^civ_[A-Za-z0-9_-]{8}$", error="Expected a key prefix."),
    metadata={"description": "The key's prefix (its first 12 characters, as listed)."},
)


class SessionArgs(PageArgs):
    key = KEY_PREFIX_FIELD
    active = ma.fields.Boolean(
        load_default=True, metadata={"description": "false: ended and expired ones too."}
    )


class KeyOut(ma.Schema):
    prefix = ma.fields.String()
    name = ma.fields.String()
    role = ma.fields.String()


class SessionOut(ma.Schema):
    id = ma.fields.Integer()
    key = ma.fields.Nested(KeyOut, attribute="api_key")
    ip = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    last_seen_at = ma.fields.AwareDateTime(metadata={"description": "Last request, to the minute."})
    expires_at = ma.fields.AwareDateTime()
    ended_at = ma.fields.AwareDateTime(allow_none=True)
    ended_by = ma.fields.String(
        allow_none=True, metadata={"description": "`sign-out` or the admin key's name."}
    )


class SessionPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SessionOut))
    next_cursor = ma.fields.String(allow_none=True)


class EndIn(ma.Schema):
    key = ma.fields.String(
        required=True,
        validate=KEY_PREFIX_FIELD.validators,
        metadata=KEY_PREFIX_FIELD.metadata,
    )


class EndOut(ma.Schema):
    ended = ma.fields.Integer(metadata={"description": "Sessions ended now."})


def _site_key(prefix: str) -> ApiKey:
    api_key = db.session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix[:PREFIX_LEN]))
    if api_key is None or api_key.site_id != g.site_id:
        abort(404, f"No key {prefix} on this site.")
    return api_key


@blp.route("")
class Sessions(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.arguments(SessionArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, SessionPage)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict[str, Any]):
        """List dashboard sessions, newest first: live ones unless `active=false`."""
        limit = cursor.page_limit(args)
        query = sa.select(DashboardSession).where(DashboardSession.site_id == g.site_id)
        if "key" in args:
            query = query.where(DashboardSession.key_id == _site_key(args["key"]).id)
        if args["active"]:
            query = query.where(
                DashboardSession.ended_at.is_(None), DashboardSession.expires_at > utcnow()
            )
        items, next_cursor = cursor.newest_first(
            query, DashboardSession.id, args.get("cursor"), limit
        )
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/end")
class EndKeySessions(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.arguments(EndIn)
    @blp.response(200, EndOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, fields: dict[str, Any]):
        """End every live dashboard session of one key (the key itself stays valid)."""
        ended = end_sessions(_site_key(fields["key"]).id, actor_name())
        db.session.commit()
        return {"ended": ended}


@blp.route("/<int:session_id>")
class SessionResource(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.response(200, SessionOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, session_id: int):
        """End one dashboard session now; ending an ended one changes nothing."""
        row = owned_or_404(DashboardSession, session_id, "session")
        if row.ended_at is None:
            row.ended_at = utcnow()
            row.ended_by = actor_name()
            db.session.commit()
        return row
