"""Webhook endpoints (admin): register, rotate secrets, test, and read and redeliver deliveries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service import outbox, webhooks
from service.api import cursor
from service.api.common import CleanString, PageArgs, owned_or_404
from service.auth import Role, actor_name, require
from service.deliveries import Courier
from service.errors import abort, field_error
from service.extensions import db
from service.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from service.overlay import Overlay
from service.webhooks import DeliveryStatus, UnsafeURL

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1/webhooks",
    description="Signed event deliveries to the site's receivers: endpoints and delivery log.",
)
SECURITY = [{"bearerAuth": ["admin"]}]  # the least role allowed (OpenAPI 3.1 roles)


class EndpointIn(ma.Schema):
    url = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=webhooks.URL_MAX),
        metadata={
            "description": "http(s) URL of the receiver; refused when it resolves to a private "
            "address (unless CIVILITY_WEBHOOK_ALLOW_PRIVATE)."
        },
    )
    description = CleanString(allow_none=True, validate=ma.validate.Length(max=500))
    event_types = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(outbox.EVENT_TYPES)),
        allow_none=True,
        validate=ma.validate.Length(min=1),
        metadata={"description": "Event types to receive; null (the default) for all."},
    )
    enabled = ma.fields.Boolean(
        metadata={"description": "false pauses deliveries (kept pending); true resumes them."}
    )


class EndpointPatch(EndpointIn):
    url = ma.fields.String(validate=ma.validate.Length(min=1, max=webhooks.URL_MAX))


class EndpointOut(ma.Schema):
    id = ma.fields.Integer()
    url = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    event_types = ma.fields.List(ma.fields.String(), allow_none=True)
    enabled = ma.fields.Boolean()
    disabled_reason = ma.fields.String(
        allow_none=True, metadata={"description": "Why the endpoint is disabled, and by whom."}
    )
    disabled_at = ma.fields.AwareDateTime(allow_none=True)
    failing_since = ma.fields.AwareDateTime(
        allow_none=True, metadata={"description": "Start of the current run of failed attempts."}
    )
    previous_secret_expires_at = ma.fields.AwareDateTime(
        allow_none=True, metadata={"description": "Until then the previous secret signs too."}
    )
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class EndpointWithSecret(EndpointOut):
    secret = ma.fields.String(
        metadata={"description": "The signing secret (`whsec_…`); shown only this once."}
    )


class EndpointList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(EndpointOut))


class DeliveryOut(ma.Schema):
    id = ma.fields.Integer()
    endpoint_id = ma.fields.Integer()
    message_id = ma.fields.String(metadata={"description": "The webhook-id header."})
    event_type = ma.fields.String()
    comment_id = ma.fields.Integer(allow_none=True)
    status = ma.fields.String(metadata={"description": "pending, succeeded or failed."})
    attempts = ma.fields.Integer()
    next_attempt_at = ma.fields.AwareDateTime(allow_none=True)
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    last_latency_ms = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    delivered_at = ma.fields.AwareDateTime(allow_none=True)


class AttemptOut(ma.Schema):
    attempt = ma.fields.Integer()
    status_code = ma.fields.Integer(allow_none=True)
    latency_ms = ma.fields.Integer(allow_none=True)
    error = ma.fields.String(allow_none=True)
    response_excerpt = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()


class DeliveryDetail(DeliveryOut):
    payload = ma.fields.Dict(metadata={"description": "The body sent: `{type, timestamp, data}`."})
    attempt_log = ma.fields.List(ma.fields.Nested(AttemptOut))


class DeliveryPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(DeliveryOut))
    next_cursor = ma.fields.String(allow_none=True)


class DeliveryArgs(PageArgs):
    status = ma.fields.String(validate=ma.validate.OneOf([s.value for s in DeliveryStatus]))
    event_type = ma.fields.String(validate=ma.validate.OneOf(outbox.EVENT_TYPES))


class PingOut(ma.Schema):
    delivery_id = ma.fields.Integer()
    message_id = ma.fields.String()
    ok = ma.fields.Boolean(metadata={"description": "The receiver answered 2xx."})
    status_code = ma.fields.Integer(allow_none=True)
    latency_ms = ma.fields.Integer(allow_none=True)
    error = ma.fields.String(allow_none=True)
    response_excerpt = ma.fields.String(allow_none=True)


def endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    """The current site's endpoint; 404 for unknown ids and other sites' endpoints alike."""
    return owned_or_404(WebhookEndpoint, endpoint_id, "webhook endpoint")


def delivery_or_404(delivery_id: int) -> WebhookDelivery:
    """The current site's delivery; 404 otherwise."""
    return owned_or_404(WebhookDelivery, delivery_id, "webhook delivery")


def checked_url(url: str) -> str:
    """422 naming ``url`` unless it is an http(s) URL on an address we may send to."""
    try:
        cfg = current_app.config
        webhooks.resolve(
            url,
            allow_private=cfg["WEBHOOK_ALLOW_PRIVATE"],
            timeout_s=cfg["WEBHOOK_DNS_TIMEOUT_S"],
        )
    except UnsafeURL as exc:
        field_error("url", f"{exc}.")
    return url


def set_enabled(endpoint: WebhookEndpoint, enabled: bool) -> None:
    """Enable (forgetting why it was disabled) or disable by the current key."""
    if enabled == endpoint.enabled:
        return
    endpoint.enabled = enabled
    if enabled:
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
    else:
        endpoint.disabled_reason = f"disabled by {actor_name()}"
        endpoint.disabled_at = utcnow()


@blp.route("")
class Endpoints(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.response(200, EndpointList)
    def get(self):
        """List the site's webhook endpoints."""
        rows = db.session.scalars(
            sa.select(WebhookEndpoint)
            .where(WebhookEndpoint.site_id == g.site.id)
            .order_by(WebhookEndpoint.id)
        ).all()
        return {"items": rows}

    @blp.doc(security=SECURITY)
    @blp.arguments(EndpointIn)
    @blp.response(201, EndpointWithSecret)
    def post(self, fields: dict):
        """Register an endpoint; the answer holds its signing secret, shown only this once."""
        secret = webhooks.new_secret()
        endpoint = WebhookEndpoint(
            site_id=g.site.id,
            url=checked_url(fields["url"]),
            description=fields.get("description"),
            event_types=fields.get("event_types"),
            enabled=fields.get("enabled", True),
            secret=secret,
        )
        if not endpoint.enabled:
            endpoint.disabled_reason = f"disabled by {actor_name()}"
            endpoint.disabled_at = utcnow()
        db.session.add(endpoint)
        db.session.commit()
        return Overlay(endpoint, secret=secret)


@blp.route("/<int:endpoint_id>")
class EndpointResource(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.response(200, EndpointOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, endpoint_id: int):
        """Read an endpoint, including why it is disabled (never its secret)."""
        return endpoint_or_404(endpoint_id)

    @blp.doc(security=SECURITY)
    @blp.arguments(EndpointPatch)
    @blp.response(200, EndpointOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def patch(self, fields: dict, endpoint_id: int):
        """Change the fields given; `enabled: true` re-enables an endpoint that was disabled."""
        endpoint = endpoint_or_404(endpoint_id)
        if "url" in fields:
            endpoint.url = checked_url(fields["url"])
        for name in ("description", "event_types"):
            if name in fields:
                setattr(endpoint, name, fields[name])
        if "enabled" in fields:
            set_enabled(endpoint, fields["enabled"])
        db.session.commit()
        return endpoint

    @blp.doc(security=SECURITY)
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, endpoint_id: int):
        """Delete an endpoint with its deliveries and their log."""
        db.session.delete(endpoint_or_404(endpoint_id))
        db.session.commit()


@blp.route("/<int:endpoint_id>/rotate-secret")
class RotateSecret(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.response(200, EndpointWithSecret)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, endpoint_id: int):
        """Issue a new secret; the old one keeps signing for CIVILITY_WEBHOOK_ROTATION_OVERLAP_S."""
        endpoint = endpoint_or_404(endpoint_id)
        secret = webhooks.rotate_secret(endpoint, current_app.config["WEBHOOK_ROTATION_OVERLAP_S"])
        db.session.commit()
        return Overlay(endpoint, secret=secret)


@blp.route("/<int:endpoint_id>/test")
class Ping(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.response(200, PingOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, endpoint_id: int):
        """Send a `ping` now (disabled endpoints too) and answer with what the receiver did."""
        endpoint = endpoint_or_404(endpoint_id)
        data = {"endpoint_id": endpoint.id, "actor": actor_name(), "message": "Civility test ping"}
        lock = timedelta(seconds=current_app.config["WEBHOOK_LOCK_S"])
        # Claimed from the start, so no dispatcher sends it too.
        delivery = WebhookDelivery(
            message_id=outbox.message_id(),
            site_id=endpoint.site_id,
            endpoint_id=endpoint.id,
            event_type="ping",
            payload=outbox.encode("ping", data),
            locked_until=utcnow() + lock,
        )
        db.session.add(delivery)
        db.session.commit()
        delivery_id, message_id = delivery.id, delivery.message_id
        result = Courier(current_app).deliver(delivery_id, manual=True)
        if result is None:  # deleted meanwhile
            abort(404, f"No webhook endpoint {endpoint_id} on this site.")
        return {
            "delivery_id": delivery_id,
            "message_id": message_id,
            "ok": result.ok,
            "status_code": result.status_code,
            "latency_ms": result.latency_ms,
            "error": result.error,
            "response_excerpt": result.excerpt,
        }


@blp.route("/<int:endpoint_id>/deliveries")
class Deliveries(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.arguments(DeliveryArgs, location="query")
    @blp.response(200, DeliveryPage)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict, endpoint_id: int):
        """An endpoint's deliveries, newest first, filtered by status and event type."""
        endpoint = endpoint_or_404(endpoint_id)
        limit = cursor.page_limit(args)
        query = sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
        if args.get("status"):
            query = query.where(WebhookDelivery.status == args["status"])
        if args.get("event_type"):
            query = query.where(WebhookDelivery.event_type == args["event_type"])
        items, next_cursor = cursor.newest_first(
            query, WebhookDelivery.id, args.get("cursor"), limit
        )
        return {"items": [_delivery(row) for row in items], "next_cursor": next_cursor}


@blp.route("/deliveries/<int:delivery_id>")
class DeliveryResource(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.response(200, DeliveryDetail)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, delivery_id: int):
        """A delivery with the body sent and every attempt (status, latency, error, answer)."""
        delivery = delivery_or_404(delivery_id)
        attempts = db.session.scalars(
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.id)
        ).all()
        return _delivery(delivery, payload=json.loads(delivery.payload), attempt_log=attempts)


@blp.route("/deliveries/<int:delivery_id>/redeliver")
class Redeliver(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=SECURITY)
    @blp.response(202, DeliveryOut)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, delivery_id: int):
        """Send a delivery again now, with the same webhook-id; a dispatcher picks it up."""
        delivery = delivery_or_404(delivery_id)
        endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
        if not endpoint.enabled:
            abort(409, f"Webhook endpoint {endpoint.id} is disabled; enable it first.")
        # Its attempt count stays: a delivery past its schedule gets this one attempt.
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = utcnow()
        db.session.commit()
        return _delivery(delivery)


def _delivery(delivery: WebhookDelivery, **extra: Any) -> Overlay:
    """The delivery for DeliveryOut to dump: no next attempt once it is settled."""
    if delivery.status != DeliveryStatus.PENDING:
        extra["next_attempt_at"] = None
    return Overlay(delivery, **extra)
