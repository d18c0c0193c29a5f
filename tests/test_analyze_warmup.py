"""A worker makes its scorer's first pass before it tells the API it answers requests."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from workers.analyze import Responder
from workers.scorers import ProfanityCheckScorer, Scored


class CountingScorer(ProfanityCheckScorer):
    """The real profanity-check model, counting the texts it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def score_detailed(self, texts: Sequence[str]) -> list[Scored]:
        self.calls.append(len(texts))
        return super().score_detailed(texts)


def responder(client: redis.Redis, prefix: str, scorer: CountingScorer) -> Responder:
    return Responder(
        client,
        stream=f"{prefix}:analyze",
        ready_key=f"{prefix}:analyzers",
        consumer="worker-a",
        scorer=scorer,
        gather_ms=1,
        batch_max=8,
        reply_ttl_s=5,
        live_s=15,
        claim_idle_ms=700,
    )


def test_warm_up_scores_once_before_announcing_and_leaves_the_timing_unseeded(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    scorer = CountingScorer()
    worker = responder(redis_server, redis_prefix, scorer)
    worker.warm_up()
    assert scorer.calls == [1]
    # Not yet a member of the analyzers set: the API answers 503 until the worker serves.
    assert redis_server.zscore(f"{redis_prefix}:analyzers", "worker-a") is None
    # A cold pass would make the deadline fitting drop requests a warm pass answers.
    assert worker.seconds_per_text is None
    assert worker.passes == 0
    worker.serve()
    assert redis_server.zscore(f"{redis_prefix}:analyzers", "worker-a") is not None


def test_a_failing_warm_up_leaves_the_worker_serving(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    class Broken(CountingScorer):
        def score_detailed(self, texts: Sequence[str]) -> list[Scored]:
            raise RuntimeError("model not ready")

    worker = responder(redis_server, redis_prefix, Broken())
    worker.warm_up()  # logged, not raised: the first request then pays, or fails as today
    worker.serve()
    assert redis_server.zscore(f"{redis_prefix}:analyzers", "worker-a") is not None
