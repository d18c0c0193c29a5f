"""Liveness and readiness probes."""

from __future__ import annotations

import marshmallow as ma
import redis
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint

from service.extensions import db
from service.redis_client import get_redis
from service.stream import live_workers

blp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators.")


class Health(ma.Schema):
    status = ma.fields.String()


class Check(ma.Schema):
    ok = ma.fields.Boolean()
    error = ma.fields.String(allow_none=True)


class Worker(ma.Schema):
    consumer = ma.fields.String()
    host = ma.fields.String()
    pid = ma.fields.Integer()
    model = ma.fields.String(metadata={"description": "The scorer in use, name@version."})
    scorer_spec = ma.fields.String()
    fallback_active = ma.fields.Boolean(
        metadata={"description": "True when the configured scorer could not load."}
    )
    batch_max = ma.fields.Integer()
    last_batch_size = ma.fields.Integer()
    scored_total = ma.fields.Integer()
    rate_per_s = ma.fields.Float()
    started_at = ma.fields.String()
    seen_at = ma.fields.String()


class Readiness(ma.Schema):
    status = ma.fields.String(metadata={"description": "`ok` or `unavailable`."})
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(Check))
    workers = ma.fields.List(
        ma.fields.Nested(Worker),
        metadata={
            "description": "Live scoring workers and their models (informational: "
            "comments queue safely while none runs)."
        },
    )


@blp.route("/healthz")
class Liveness(MethodView):
    @blp.response(200, Health)
    def get(self):
        """Answer 200 while the process is alive."""
        return {"status": "ok"}


def _check_db() -> dict:
    try:
        db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        return {"ok": False, "error": f"database: {type(exc).__name__}: {exc.__cause__ or exc}"}
    return {"ok": True}


def _check_redis() -> dict:
    try:
        get_redis().ping()
    except redis.RedisError as exc:
        return {"ok": False, "error": f"redis: {exc}"}
    return {"ok": True}


@blp.route("/readyz")
class ReadinessProbe(MethodView):
    @blp.response(200, Readiness)
    @blp.alt_response(503, schema=Readiness, description="Something this service needs is down.")
    def get(self):
        """Answer 200 when the database and Redis answer; 503 naming what fails otherwise."""
        checks = {"database": _check_db(), "redis": _check_redis()}
        ready = all(check["ok"] for check in checks.values())
        workers = live_workers() if checks["redis"]["ok"] else []
        body = {"status": "ok" if ready else "unavailable", "checks": checks, "workers": workers}
        return body, (200 if ready else 503)
