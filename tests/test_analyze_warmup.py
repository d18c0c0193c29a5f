"""A worker makes its scorer's first pass before it tells the API it answers requests, and
gathers a pass without waiting on Redis's clock."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
import redis

from service.stream import GROUP
from tests.conftest import REDIS_URL
from tests.marks import ONE_BACKEND
from workers.analyze import PassCost, Responder
from workers.scorers import Between, ProfanityCheckScorer, Scored


class CountingScorer(ProfanityCheckScorer):
    """The real profanity-check model, counting the texts it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def score_detailed(self, texts: Sequence[str], *, between: Between = None) -> list[Scored]:
        self.calls.append(len(texts))
        return super().score_detailed(texts, between=between)


def responder(
    client: redis.Redis, prefix: str, scorer: CountingScorer, gather_ms: int = 1
) -> Responder:
    return Responder(
        client,
        stream=f"{prefix}:analyze",
        ready_key=f"{prefix}:analyzers",
        consumer="worker-a",
        scorer=scorer,
        gather_ms=gather_ms,
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
    assert worker.cost.seconds(1) is None
    assert worker.passes == 0
    worker.serve()
    assert redis_server.zscore(f"{redis_prefix}:analyzers", "worker-a") is not None


def test_a_failing_warm_up_leaves_the_worker_serving(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    class Broken(CountingScorer):
        def score_detailed(self, texts: Sequence[str], *, between: Between = None) -> list[Scored]:
            raise RuntimeError("model not ready")

    worker = responder(redis_server, redis_prefix, Broken())
    worker.warm_up()  # logged, not raised: the first request then pays, or fails as today
    worker.serve()
    assert redis_server.zscore(f"{redis_prefix}:analyzers", "worker-a") is not None


class Watched(redis.Redis):
    """A real Redis client that keeps the commands it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(args)
        return super().execute_command(*args, **options)


def test_gathering_polls_the_stream_and_never_blocks_in_redis(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    # Redis times a blocked read out only on its own clock tick (100 ms at its default hz
    # of 10), so gathering with a 5 ms BLOCK held every lone request for up to a tick.
    client = Watched.from_url(REDIS_URL, decode_responses=True)
    worker = responder(client, redis_prefix, CountingScorer(), gather_ms=20)
    worker.serve()  # the group and the analyzers entry
    reply = f"{redis_prefix}:reply:one"
    request = {"id": "one", "texts": json.dumps(["a lone request"]), "reply": reply}
    client.xadd(f"{redis_prefix}:analyze", {**request, "deadline": f"{time.time() + 5:.6f}"})
    client.sent.clear()
    assert worker.serve() == 1
    answer = json.loads(redis_server.lpop(reply))
    assert "scores" in answer["results"][0]
    reads = [args for args in client.sent if args[0] == "XREADGROUP"]
    assert len(reads) >= 3  # the request, at least one poll of the window, the empty end
    assert not [args for args in reads if b"BLOCK" in args or "BLOCK" in args]
    client.close()


def test_a_worker_kept_busy_by_requests_back_to_back_still_says_it_serves(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    # Under saturation every pass finds the next requests waiting, so serve() does not
    # return for as long as they come. The worker announced itself only on entering it,
    # so after live_s the API took it for gone and answered 503 at once: a flood of
    # instant 503s that took the model's CPU.
    stream, ready = f"{redis_prefix}:analyze", f"{redis_prefix}:analyzers"
    live_s, busy_s = 0.6, 2.0
    lapsed: list[float] = []

    class Callers(CountingScorer):
        """Real scoring; while it scores, the next caller's request arrives."""

        def score_detailed(self, texts: Sequence[str], *, between: Between = None) -> list[Scored]:
            until = redis_server.zscore(ready, "worker-a")
            if until is not None and until < time.time():
                lapsed.append(time.time() - until)
            if time.monotonic() < stop:
                send(len(self.calls))
            time.sleep(0.05)  # a pass takes a while
            return super().score_detailed(texts, between=between)

    def send(n: int) -> None:
        fields = {"id": f"r{n}", "texts": json.dumps([f"request {n}"])}
        fields |= {"reply": f"{redis_prefix}:reply:r{n}", "deadline": f"{time.time() + 5:.6f}"}
        redis_server.xadd(stream, fields)

    scorer = Callers()
    worker = Responder(
        redis_server,
        stream=stream,
        ready_key=ready,
        consumer="worker-a",
        scorer=scorer,
        gather_ms=1,
        batch_max=8,
        reply_ttl_s=5,
        live_s=live_s,
        claim_idle_ms=700,
    )
    worker.ensure_group()
    stop = time.monotonic() + busy_s
    send(-1)
    started = time.monotonic()
    answered = worker.serve()
    # One serve() for the whole busy spell, several times live_s: the case that lapsed.
    assert time.monotonic() - started >= busy_s
    assert answered == len(scorer.calls) > 1
    assert lapsed == []


def test_passes_are_fitted_to_deadlines_by_a_cost_per_pass_and_per_character(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    # Passes of 3 texts of 50 characters took 0.165 s, passes of 8 took 0.19 s: nearly all
    # of it the pass's own cost. In proportion (0.055 s a text) 16 such texts would take
    # 0.88 s and miss a 0.6 s deadline, so each pass stayed small while the rest expired.
    worker = responder(redis_server, redis_prefix, CountingScorer())
    for _ in range(4):
        worker.cost.record(3 * 50, 0.165)
        worker.cost.record(8 * 50, 0.19)
    assert worker.cost.seconds(16 * 50) == pytest.approx(0.23, abs=0.001)
    deadline = time.time() + 0.6
    live = [(f"r{n}", ["x" * 50], deadline, f"reply:{n}") for n in range(16)]
    chosen, later, refused = worker._fitting(live)
    assert (len(chosen), later, refused) == (16, [], [])
    # A pass that cannot make the deadline is not attempted whole: the newest fit.
    soon = [(f"s{n}", ["x" * 50], time.time() + 0.17, f"reply:s{n}") for n in range(16)]
    chosen, later, refused = worker._fitting(soon)
    assert 1 <= len(chosen) < 16 and len(chosen) + len(later) == 16 and refused == []


def test_the_pass_cost_falls_back_to_proportion_until_two_sizes_are_seen() -> None:
    cost = PassCost()
    assert cost.seconds(100) is None
    cost.record(100, 0.2)
    cost.record(100, 0.4)
    assert cost.seconds(200) == pytest.approx(0.6)  # 0.3 s per 100 characters


def test_passes_are_fitted_with_the_margin_recent_passes_ran_over_their_estimates() -> None:
    # Passes on a shared machine vary by a fifth around the fit. Fitted by the mean, the
    # pass that just fits a deadline misses it half the time, and all its answers are
    # scored for nothing: the bound stretches the estimate by the recent overruns.
    steady, noisy = PassCost(), PassCost()
    for n in range(32):
        for chars, seconds in ((150, 0.165), (400, 0.19)):
            steady.record(chars, seconds)
            noisy.record(chars, seconds * (1.2 if n % 2 else 0.8))
    assert steady.bound(800) == pytest.approx(steady.seconds(800))
    assert noisy.seconds(800) == pytest.approx(steady.seconds(800), rel=0.05)
    assert noisy.bound(800) - noisy.seconds(800) >= 0.03  # a fifth of a pass's 0.19 s


def test_a_pass_fitted_by_the_bound_takes_fewer_requests_when_passes_overrun(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    steady = responder(redis_server, redis_prefix, CountingScorer())
    noisy = responder(redis_server, redis_prefix, CountingScorer())
    for n in range(32):
        for chars, seconds in ((50, 0.1), (400, 0.3)):
            steady.cost.record(chars, seconds)
            noisy.cost.record(chars, seconds * (1.3 if n % 2 else 0.7))
    deadline = time.time() + 0.5
    live = [(f"r{n}", ["x" * 50], deadline, f"reply:{n}") for n in range(16)]
    steady_chosen, _, _ = steady._fitting(live)
    noisy_chosen, noisy_later, _ = noisy._fitting(live)
    assert len(noisy_chosen) < len(steady_chosen) < 16
    assert len(noisy_chosen) + len(noisy_later) == 16


def test_a_fast_scorers_passes_do_not_make_a_long_text_look_dear() -> None:
    # profanity-check's passes are their fixed cost and noise: the longer ones happened to
    # be quicker. In proportion to their characters a 10,000-character text looked 30 times
    # dearer than any pass seen, and was refused as if it could not make its deadline.
    cost = PassCost()
    for chars, seconds in ((40, 0.005), (900, 0.003), (120, 0.006), (1400, 0.004)) * 8:
        cost.record(chars, seconds)
    assert cost.seconds(10_000) == pytest.approx(0.0045)
    assert cost.bound(10_000) < 0.01


def test_a_pass_logs_and_meters_how_long_its_requests_waited_in_the_stream(
    redis_server: redis.Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    from service import metrics

    def waits() -> tuple[float, float]:
        sample = {s.name: s.value for s in metrics.ANALYZE_WAIT_SECONDS.collect()[0].samples}
        return sample["civility_analyze_wait_seconds_count"], sample[
            "civility_analyze_wait_seconds_sum"
        ]

    worker = responder(redis_server, redis_prefix, CountingScorer())
    worker.serve()
    before = waits()
    reply = f"{redis_prefix}:reply:w"
    fields = {"id": "w", "texts": json.dumps(["waits a while"]), "reply": reply}
    redis_server.xadd(f"{redis_prefix}:analyze", {**fields, "deadline": f"{time.time() + 5:.6f}"})
    time.sleep(0.2)  # the worker was busy elsewhere
    with caplog.at_level("INFO", logger="workers.analyze"):
        assert worker.serve() == 1
    count, total = waits()
    assert count == before[0] + 1
    assert 0.2 <= total - before[1] < 1
    (line,) = [r.getMessage() for r in caplog.records if "analyze pass" in r.getMessage()]
    waited = float(line.rsplit("waited up to ", 1)[1].rstrip("s"))
    assert 0.2 <= waited < 1


@ONE_BACKEND
def test_a_worker_answering_requests_mid_batch_keeps_the_batch_from_looking_idle(
    config: dict[str, Any], redis_server: redis.Redis, redis_prefix: str
) -> None:
    # Requests back to back keep serve() answering for as long as they come. A worker that
    # had read comments first left them untouched meanwhile: past SCORE_CLAIM_IDLE_MS
    # another worker claimed them (a delivery counted each time, dead letters in the end).
    from service import create_app
    from workers.worker import Worker

    config["SCORE_CLAIM_IDLE_MS"] = 400  # touched every 100 ms
    app = create_app(config)
    stream, requests = f"{redis_prefix}:score", f"{redis_prefix}:analyze"
    idle_ms: list[int] = []

    class Callers(CountingScorer):
        """Real scoring; each pass sees the comment's idle time, then the next caller asks."""

        def score_detailed(self, texts: Sequence[str], *, between: Between = None) -> list[Scored]:
            (pending,) = redis_server.xpending_range(stream, GROUP, "-", "+", 1)
            idle_ms.append(pending["time_since_delivered"])
            if time.monotonic() < stop:
                send(len(self.calls))
            time.sleep(0.05)
            return super().score_detailed(texts, between=between)

    def send(n: int) -> None:
        fields = {"id": f"r{n}", "texts": json.dumps([f"request {n}"])}
        fields |= {"reply": f"{redis_prefix}:reply:r{n}", "deadline": f"{time.time() + 5:.6f}"}
        redis_server.xadd(requests, fields)

    with app.app_context():
        worker = Worker(app, Callers(), consumer="busy")
        worker.queue.ensure_group()
        worker.analyze.ensure_group()
        redis_server.xadd(stream, {"comment_id": "1"})
        send(-1)
        stop = time.monotonic() + 1.5
        (comment,) = worker.analyze.read_with(worker.queue, 100)  # and the request, inboxed
        worker.queue.hold([comment])
        worker._serve()
    app.extensions["civility.redis"].close()

    assert len(idle_ms) > 20  # about 1.5 s of passes back to back, over three claim idles
    assert max(idle_ms) < 400, idle_ms
