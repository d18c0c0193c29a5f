"""Synchronous scoring, the API's side: texts go to the workers over Redis and the answer
comes back on a reply key before the deadline.

The API process never loads a model. It XADDs ``{id, texts, deadline, reply}`` to
``{prefix}:analyze`` and BLPOPs ``{prefix}:reply:<id>`` until the deadline; past it,
it deletes its request (a worker that has not read it yet never scores it) and the
caller gets a 503. Without a live worker it answers 503 at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass

import redis
from flask import current_app, request

from service import metrics, redis_keys
from service.auth import Caller, KeyCache, authenticate_token, hash_key
from service.extensions import db
from service.redis_client import get_redis

log = logging.getLogger(__name__)

_client_lock = threading.Lock()


class AnalyzeUnavailable(Exception):
    """No answer in time: ``reason`` is ``no_worker``, ``timeout``, ``redis`` or ``error``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Analysis:
    """What the workers answered: the model, its labels, and per text its scores."""

    model: str
    labels: tuple[str, ...]
    scores: list[dict[str, float]]
    truncated: list[bool]
    # Per text: the language it was detected as (None: unknown) and whether a loaded
    # scorer reads that language (False: the fallback language's scorer read it).
    languages: list[str | None]
    supported: list[bool]
    # Per text: the model that read it (with several scorers, the one it was routed to).
    models: list[str]


def _waiting_client() -> redis.Redis:
    """A client whose read timeout outlasts a BLPOP of the whole deadline (the app's is short)."""
    app = current_app
    client = app.extensions.get("civility.redis_analyze")
    if client is None:
        with _client_lock:
            client = app.extensions.get("civility.redis_analyze")
            if client is None:
                cfg = app.config
                client = redis.Redis.from_url(
                    cfg["REDIS_URL"],
                    decode_responses=True,
                    socket_connect_timeout=cfg["REDIS_TIMEOUT_S"],
                    socket_timeout=cfg["ANALYZE_TIMEOUT_MS"] / 1000 + cfg["REDIS_TIMEOUT_S"] + 1,
                    max_connections=None,
                )
                app.extensions["civility.redis_analyze"] = client
    return client


def _no_score_in_time() -> AnalyzeUnavailable:
    """The deadline passed, or the worker knew it would pass before a score."""
    return AnalyzeUnavailable(
        "timeout", f"No score within {current_app.config['ANALYZE_TIMEOUT_MS']} ms."
    )


def live_analyzers(client: redis.Redis) -> int:
    """Workers that said in the last few heartbeats that they answer synchronous requests."""
    return client.zcount(redis_keys.analyzers(), time.time(), "+inf")


def score_texts(texts: list[str], face: str) -> Analysis:
    """Scores for ``texts`` from a worker within ANALYZE_TIMEOUT_MS; AnalyzeUnavailable else."""
    started = time.perf_counter()
    # No transaction may stay open while the request waits: on SQLite it would hold the
    # write lock (every other request would queue behind it), on Postgres a connection.
    db.session.rollback()
    try:
        analysis = _request(texts)
    except AnalyzeUnavailable as exc:
        metrics.ANALYZE_REQUESTS.labels(face, exc.reason).inc()
        metrics.ANALYZE_SECONDS.labels(face, exc.reason).observe(time.perf_counter() - started)
        log.warning("analyze (%s): %d texts not scored, %s", face, len(texts), exc.reason)
        raise
    metrics.ANALYZE_REQUESTS.labels(face, "scored").inc()
    metrics.ANALYZE_SECONDS.labels(face, "scored").observe(time.perf_counter() - started)
    metrics.ANALYZE_TEXTS.labels(face, analysis.model).inc(len(texts))
    return analysis


def _request(texts: list[str]) -> Analysis:
    timeout_s = current_app.config["ANALYZE_TIMEOUT_MS"] / 1000
    deadline = time.time() + timeout_s
    client = get_redis()
    request_id = uuid.uuid4().hex
    reply = redis_keys.reply(request_id)
    try:
        if not live_analyzers(client):
            raise AnalyzeUnavailable("no_worker", "No scoring worker is running.")
        entry_id = client.xadd(
            redis_keys.analyze_stream(),
            {
                "id": request_id,
                "texts": json.dumps(texts),
                "deadline": f"{deadline:.6f}",
                "reply": reply,
            },
        )
        left = deadline - time.time()
        answer = _waiting_client().blpop([reply], timeout=max(left, 0.001)) if left > 0 else None
        if answer is None:
            # The caller gives up: take the request back so no worker scores it, and any
            # late answer away, so nothing of the texts stays in Redis.
            pipe = client.pipeline(transaction=False)
            pipe.xdel(redis_keys.analyze_stream(), entry_id)
            pipe.delete(reply)
            pipe.execute()
            raise _no_score_in_time()
    except redis.RedisError as exc:
        raise AnalyzeUnavailable(
            "redis", f"Scoring is unavailable ({type(exc).__name__})."
        ) from exc
    payload = json.loads(answer[1])
    if payload.get("unscored") == "deadline":
        # The worker knew no pass would answer in time: the caller hears so now.
        raise _no_score_in_time()
    if "error" in payload:
        raise AnalyzeUnavailable("error", "The scoring worker failed on this request.")
    results = payload["results"]
    if any("error" in result for result in results):
        raise AnalyzeUnavailable("error", "A text could not be scored.")
    models = [result.get("model") or payload["model"] for result in results]
    return Analysis(
        # The model that read the (first) text: with several scorers, the one it was routed to.
        model=models[0] if models else payload["model"],
        labels=tuple(payload["labels"]),
        scores=[result["scores"] for result in results],
        truncated=[bool(result.get("truncated")) for result in results],
        languages=[result.get("language") for result in results],
        supported=[result.get("supported", True) for result in results],
        models=models,
    )


def request_key() -> str | None:
    """The API key of a drop-in request: ``?key=``, ``X-Goog-Api-Key`` or a Bearer header."""
    token = request.args.get("key") or request.headers.get("X-Goog-Api-Key")
    if not token:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    return token or None


def caller_for(token: str) -> Caller | None:
    """The live key ``token`` names (any role includes ``site``), through the key cache."""
    cache: KeyCache = current_app.extensions["civility.key_cache"]
    token_hash = hash_key(token)
    caller = cache.get(token_hash)
    if caller is None:
        api_key = authenticate_token(token)
        if api_key is None:
            return None
        caller = Caller.of(api_key)
        cache.put(token_hash, caller)
    return caller
