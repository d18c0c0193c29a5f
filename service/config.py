"""Settings: embedded defaults, overridden by ``CIVILITY_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str  # config key; the environment variable is CIVILITY_<name>
    default: Any
    meaning: str


# One table for code, README and tests: tests/test_config.py checks that every
# row is documented in the README.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy URL. Default: SQLite file `civility.sqlite3` in the "
        "instance folder (WAL mode). Production: `postgresql+psycopg://user:pass@host/db`.",
    ),
    Setting(
        "REDIS_URL",
        "redis://localhost:6379/0",
        "Redis for the scoring stream, rate limits and worker heartbeats.",
    ),
    Setting(
        "REDIS_PREFIX", "civility", "Prefix of every Redis key, so deployments can share one Redis."
    ),
    Setting(
        "REDIS_TIMEOUT_S",
        0.5,
        "Connect/read timeout for Redis on the request path; an "
        "unreachable Redis never stalls ingest for longer.",
    ),
    Setting(
        "API_KEY_CACHE_S",
        10.0,
        "How long each API process remembers a verified API key, saving a database "
        "lookup per request. A key revoked with `civility keys revoke` keeps working for "
        "up to this long; 0 turns the cache off.",
    ),
    Setting(
        "API_KEY_CACHE_MAX",
        10000,
        "Most verified API keys each API process remembers; past it the cache starts "
        "over (memory stays bounded however many keys a deployment has).",
    ),
    Setting("RATELIMIT_ENABLED", True, "Turn rate limiting on/off."),
    Setting("RATELIMIT_PER_KEY", "1200 per minute", "Requests per API key (all routes)."),
    Setting("RATELIMIT_PER_AUTHOR", "10 per minute", "Comments per author (site user) per site."),
    Setting(
        "RATELIMIT_PER_IP",
        "300 per minute",
        "Requests per client IP: the reader's IP for "
        "comment submissions that send `client_ip`, the caller's IP for public reads.",
    ),
    Setting(
        "RATELIMIT_PER_SIGN_IN_IP",
        "10 per minute",
        "Dashboard sign-in attempts per client IP (a bucket of its own: readers spending "
        "theirs never lock moderators out).",
    ),
    Setting(
        "RATELIMIT_PER_FAILED_KEY_IP",
        "20 per minute",
        "Failed API key lookups (unknown or revoked bearer keys, wrong sign-in keys) per "
        "client IP; past it that IP's unverified keys answer 429 without a lookup.",
    ),
    Setting(
        "TRUSTED_PROXIES",
        0,
        "How many reverse proxies in front of the API append to `X-Forwarded-For` (and "
        "set `-Proto`, `-Host`): the client's IP is read that many hops back (Werkzeug's "
        "ProxyFix). 0: the socket's peer, and forwarded headers are ignored. compose.yaml's "
        "Caddy proxy is 1. More than you have lets clients forge their IP.",
    ),
    Setting(
        "MAX_REQUEST_BYTES",
        262144,
        "Largest request body accepted; larger answers 413 "
        "(room for 10,000 characters written as JSON \\u escapes).",
    ),
    Setting(
        "JSON_MAX_DEPTH",
        32,
        "Deepest nesting of arrays and objects a JSON body may have; deeper answers 400 "
        "before the body is parsed (Python's parser would run out of stack).",
    ),
    Setting(
        "MAX_BODY_CHARS", 10000, "Longest comment body, in characters after NFC normalisation."
    ),
    Setting("MAX_METADATA_BYTES", 4096, "Largest `metadata` object on a comment, JSON-encoded."),
    Setting("SITE_WORDS_MAX", 10000, "Most entries in a site's banned or suspect word list."),
    Setting("SITE_ORIGINS_MAX", 50, "Most allowed origins per site."),
    Setting("PAGE_SIZE", 50, "Default page size of listings."),
    Setting("PAGE_SIZE_MAX", 200, "Largest page size a client may ask for."),
    Setting(
        "SCORER",
        "detoxify:original",
        "Scorer: `detoxify:<original|unbiased|multilingual|"
        "original-small|unbiased-small>`, `detoxify:/path/to/checkpoint.ckpt`, or "
        "`profanity-check`.",
    ),
    Setting(
        "SCORER_FALLBACK",
        "profanity-check",
        "Scorer used when `SCORER` cannot load; `none` makes the worker exit non-zero instead.",
    ),
    Setting(
        "SCORERS",
        "",
        "Scorers one worker loads, each with the languages it reads, `;`-separated: "
        "`detoxify:original=en;detoxify:multilingual=fr,es,it,pt,tr,ru` (`=*`: any "
        "language; no `=`: the languages its model was trained on). A comment goes to the "
        "first that reads its language (a site may choose per language: "
        "`language_scorers`); one in a language none reads is held (`unsupported_language`). "
        "Empty: `SCORER` alone, reading its model's languages.",
    ),
    Setting(
        "LANGUAGE_FALLBACK",
        "en",
        "Language a comment is read as when detection is unsure (short or mixed texts); "
        "the comment's reasons say so (`language_uncertain`).",
    ),
    Setting(
        "LANGUAGE_MIN_CONFIDENCE",
        0.6,
        "Probability the language detector must reach for its answer to be used; below it "
        "the comment falls back to `LANGUAGE_FALLBACK` (or a scorer reading every likely "
        "language).",
    ),
    Setting(
        "MODEL_CONFIG_DIR",
        None,
        "Local Hugging Face config dir for a `detoxify:<checkpoint>` "
        "scorer (offline / air-gapped use).",
    ),
    Setting("MODEL_DEVICE", "cpu", "`cpu` or `cuda` for Detoxify."),
    Setting(
        "MODEL_THREADS",
        0,
        "torch threads in the worker (0 = torch's default). Leave cores "
        "for the API on small machines.",
    ),
    Setting(
        "MODEL_THREAD_WAIT",
        "passive",
        "How the worker's idle torch threads wait (OpenMP's `OMP_WAIT_POLICY`, unless that "
        "is set): `passive` sleeps, which keeps scoring fast when the API or anything else "
        "shares the cores; `active` spins, marginally faster on cores of its own.",
    ),
    Setting(
        "MODEL_MAX_TOKENS",
        256,
        "Tokens per window the model reads; longer texts are read in overlapping windows "
        "(`MODEL_WINDOW_OVERLAP`, `MODEL_MAX_WINDOWS`).",
    ),
    Setting(
        "MODEL_PRECISION",
        "auto",
        "Numbers Detoxify computes with. `fp32`: Detoxify's exact scores. `bf16`: 2-3x the "
        "throughput on CPUs with bf16 matrix units (Intel AMX: Xeon 4th generation and "
        "later); probabilities move by about 0.001 and no held-out comment changed sides of "
        "the default thresholds (`bench/precision.py`). `int8` (CPU only): 2-4x the "
        "throughput, but about 2% of comments change sides. `auto`: bf16 on an AMX CPU, "
        "fp32 elsewhere (on GPUs fp32 measured faster). Comments scored at bf16 or int8 "
        "carry `…+bf16` / `…+int8` in `model`.",
    ),
    Setting("SCORE_BATCH_MAX", 32, "Most comments a worker scores in one forward pass."),
    Setting(
        "SCORE_WINDOW_MAX",
        256,
        "Most messages a worker takes from the stream at once while a backlog builds "
        "(its share of the undelivered ones, never fewer than `SCORE_BATCH_MAX`). It sorts "
        "them by length across the window, so passes are fuller and padding smaller, and "
        "commits pass by pass. Set it to `SCORE_BATCH_MAX` to read one pass at a time.",
    ),
    Setting("SCORE_BLOCK_MS", 1000, "How long a worker waits on the stream for new comments."),
    Setting(
        "SCORE_CLAIM_IDLE_MS",
        60000,
        "A message unacknowledged this long (its worker died) is claimed by a live worker.",
    ),
    Setting(
        "SCORE_CONSUMER_FORGET_S",
        3600,
        "A consumer of the scoring group silent this long with no message pending (a worker "
        "killed without leaving) is removed from the group; 0 keeps them.",
    ),
    Setting(
        "SCORE_MAX_ATTEMPTS",
        5,
        "Deliveries before a message goes to the dead-letter "
        "stream and its comment is held with reason `scoring_failed`.",
    ),
    Setting(
        "SWEEP_AFTER_S",
        120,
        "Comments still pending after this many seconds are "
        "re-enqueued (covers a lost XADD or a Redis that lost its data).",
    ),
    Setting("SWEEP_INTERVAL_S", 30, "How often a worker runs the sweeper."),
    Setting("HEARTBEAT_S", 5, "Worker heartbeat interval; a worker silent for 3 beats is gone."),
    Setting(
        "DB_RETRY_MAX_S",
        30,
        "Longest back-off between a worker's or dispatcher's retries while the database is down.",
    ),
    Setting(
        "BULK_MAX",
        50000,
        "Most comments one bulk decision may change (larger selections "
        "answer 422: narrow the filter).",
    ),
    Setting("BULK_CHUNK_SIZE", 500, "Comments changed per transaction in a bulk decision."),
    Setting(
        "STATS_SAMPLE_MAX",
        10000,
        "Most decisions the latency percentiles of /v1/stats read (the newest; 10,000 "
        "pin a median and p95 to well under 1% of rank, and bound the query's cost).",
    ),
    Setting(
        "STATS_ROLLUP_GRACE_S",
        3600,
        "How long after a UTC day ends /v1/stats takes it as closed and counts it once "
        "into its daily rollup (`civility stats rebuild` recounts).",
    ),
    Setting(
        "RETAIN_EVENTS_DAYS",
        180,
        "Days the audit events of comments only the policy moved (arrival, automatic "
        "decision) are kept; pruned by whole UTC days, each counted into the stats rollup "
        "first. 0 keeps them forever. See Retention.",
    ),
    Setting(
        "RETAIN_MODERATED_EVENTS_DAYS",
        0,
        "Days the whole history of a comment someone other than the policy moved "
        "(moderators, bulk actions, bans, report requeues, deletes) is kept after its newest "
        "event: the audit trail and calibration's labels. 0 keeps it forever.",
    ),
    Setting(
        "RETAIN_DELIVERIES_DAYS",
        30,
        "Days finished webhook deliveries (succeeded or failed) and their attempts are kept "
        "after their last attempt; pending and retrying ones always stay. 0 keeps them forever.",
    ),
    Setting(
        "RETAIN_ANALYZE_FEEDBACK_DAYS",
        365,
        "Days `suggestscore` feedback (labelled examples, texts unless doNotStore) is kept. "
        "0 keeps it forever.",
    ),
    Setting(
        "RETAIN_SESSIONS_DAYS",
        30,
        "Days a dashboard session's row is kept after it ended or expired (the sign-in "
        "history an admin lists). 0 keeps them forever.",
    ),
    Setting(
        "PRUNE_BATCH",
        1000,
        "Most rows of one kind one pruning transaction deletes (SQLite's write lock is "
        "held for one batch at a time).",
    ),
    Setting(
        "PRUNE_INTERVAL_S",
        3600,
        "How often one of the workers prunes what is past its retention; 0 leaves pruning "
        "to `civility prune` (cron).",
    ),
    Setting(
        "PRUNE_BUDGET_S",
        2.0,
        "Longest a worker prunes before scoring again; a backlog is worked off in such "
        "slices, turn after turn.",
    ),
    Setting(
        "CALIBRATION_DAYS",
        90,
        "Default window of `/v1/site/calibration` and `/v1/site/simulate`, in days back.",
    ),
    Setting(
        "CALIBRATION_MIN_DECISIONS",
        200,
        "Moderator decisions a label needs before calibration reports figures and suggests "
        'thresholds for it (below: "not enough decisions").',
    ),
    Setting(
        "CALIBRATION_MAX_DECISIONS",
        20000,
        "Most moderator decisions one calibration (and a simulation's agreement figures) "
        "reads: the newest, which say the site's current line best. Its time grows with "
        "this number, not with how many decisions the site has.",
    ),
    Setting(
        "CALIBRATION_TARGET_PRECISION",
        0.95,
        "Suggested `reject_at` is the lowest threshold whose rejections moderators upheld "
        "at this precision.",
    ),
    Setting(
        "CALIBRATION_TARGET_RECALL",
        0.0,
        "When above 0, suggested `hold_at` is the highest threshold that holds this share "
        "of what moderators rejected; 0 = the threshold of best F1.",
    ),
    Setting("SIMULATE_LIMIT", 10000, "Comments `/v1/site/simulate` replays by default."),
    Setting("SIMULATE_LIMIT_MAX", 100000, "Most comments one simulation may replay."),
    Setting("SIMULATE_SAMPLE", 20, "Comment ids a simulation answers per move."),
    Setting(
        "WEBHOOK_SCHEDULE",
        "5s,5m,30m,2h,5h,10h,10h",
        "Delays before each retry of a "
        "failed delivery (plus up to 10% jitter); after the last, the delivery is `failed`.",
    ),
    Setting("WEBHOOK_CONNECT_TIMEOUT_S", 3.0, "Connect timeout of a webhook POST."),
    Setting("WEBHOOK_READ_TIMEOUT_S", 10.0, "Read timeout of a webhook POST."),
    Setting(
        "WEBHOOK_DNS_TIMEOUT_S",
        2.0,
        "How long resolving a webhook URL's host may take, at registration and at each "
        "delivery; a slower lookup fails (registration: 422, delivery: retried).",
    ),
    Setting("WEBHOOK_MAX_RESPONSE_BYTES", 4096, "Bytes of a receiver's answer read and logged."),
    Setting(
        "WEBHOOK_ROTATION_OVERLAP_S",
        86400,
        "After a secret rotation, how long the old secret still signs too.",
    ),
    Setting(
        "WEBHOOK_DISABLE_AFTER_S",
        432000,
        "An endpoint whose deliveries all failed for this long is disabled (5 days).",
    ),
    Setting("WEBHOOK_BATCH", 50, "Deliveries a dispatcher claims at a time."),
    Setting(
        "WEBHOOK_CONCURRENCY",
        8,
        "Deliveries a dispatcher sends at once (threads), across endpoints.",
    ),
    Setting(
        "WEBHOOK_PER_ENDPOINT",
        2,
        "Most deliveries in flight to one endpoint: a receiver that hangs holds back only "
        "its own, never another site's.",
    ),
    Setting("WEBHOOK_POLL_S", 1.0, "How often an idle dispatcher looks for due deliveries."),
    Setting(
        "WEBHOOK_LOCK_S",
        60,
        "How long a claimed delivery stays claimed (a dispatcher "
        "killed mid-delivery frees it after this).",
    ),
    Setting(
        "RATELIMIT_PER_BROWSER_IP",
        "20 per minute",
        "Comments and reports a browser may send per client IP (the embed widget's writes).",
    ),
    Setting(
        "EMBED_TOKEN_MAX_AGE_S",
        86400,
        "Longest life a reader token (the embed's HS256 JWT) may have: one whose `exp` is "
        "further ahead is refused (sign short-lived tokens).",
    ),
    Setting(
        "EMBED_TOKEN_LEEWAY_S",
        30,
        "Clock skew allowed when checking a reader token's `exp`, `iat` and `nbf`.",
    ),
    Setting(
        "EMBED_SECRET_OVERLAP_S",
        86400,
        "After an embed secret rotation, how long tokens signed with the old one still verify.",
    ),
    Setting(
        "EMBED_POLL_MS",
        5000,
        "How often the widget asks about its reader's own pending comments.",
    ),
    Setting(
        "DEMO_PAGE",
        False,
        "Serve the demo article at `/demo/` and its reader-token endpoint (`scripts/run` "
        "turns it on). Never in production: the endpoint signs in anyone as the demo reader.",
    ),
    Setting("SESSION_HOURS", 12, "How long a dashboard sign-in lasts."),
    Setting(
        "COOKIE_SECURE",
        True,
        "Send the dashboard's session cookie over HTTPS only "
        "(browsers treat http://localhost and 127.0.0.1 as secure, so local use works).",
    ),
    Setting(
        "WEBHOOK_ALLOW_PRIVATE",
        False,
        "Allow webhook URLs on loopback/private networks. Needed for local tests "
        "(`scripts/run` turns it on when it listens on loopback); dangerous in production "
        "(SSRF).",
    ),
    Setting("LOG_FORMAT", "text", "`text` or `json` (one JSON object per line)."),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    Setting(
        "METRICS_ENABLED",
        True,
        "Serve Prometheus metrics at `/metrics` (no key needed: keep it off the public "
        "internet, e.g. block it at the proxy).",
    ),
    Setting(
        "METRICS_PORT",
        0,
        "When set, `civility worker` and `civility webhooks` serve their own `/metrics` on "
        "this port (for hosts or containers that do not share the API's metrics directory).",
    ),
    Setting(
        "INSTANCE_PATH",
        None,
        "Folder for the default SQLite file, the secret key and the "
        "demo's keys. Default: `instance/` beside the code (Flask's instance folder).",
    ),
    Setting(
        "SECRET_KEY",
        None,
        "Signs session cookies; every process needs the same one. Default: a random key "
        "kept in the instance folder, on the embedded SQLite setup only; elsewhere, and for "
        "placeholders like `change-me`, Civility refuses to start.",
    ),
    Setting(
        "ANALYZE_TIMEOUT_MS",
        700,
        "Deadline of a synchronous scoring request (Perspective, OpenAI and Coral faces): past "
        "it the API answers 503 and the worker drops the request unscored. Coral gives up at "
        "800 ms and publishes the comment unscored.",
    ),
    Setting(
        "ANALYZE_GATHER_MS",
        5,
        "How long a worker that found a synchronous request waits for more, to score them "
        "together in one forward pass.",
    ),
    Setting("ANALYZE_BATCH_MAX", 64, "Most texts a worker scores in one synchronous pass."),
    Setting(
        "ANALYZE_MAX_INPUTS",
        32,
        "Most texts in one synchronous request (OpenAI's `input` array); more answer 400.",
    ),
    Setting(
        "ANALYZE_MAX_CHARS",
        20000,
        "Longest text a synchronous request may score, in characters; longer answers 400.",
    ),
    Setting(
        "ANALYZE_MAX_SPANS",
        50,
        "Most `spanScores` a Perspective call with `spanAnnotations` gets per attribute: a "
        "text of more sentences is scored in that many runs of neighbouring sentences.",
    ),
    Setting(
        "ANALYZE_REPLY_TTL_S",
        5,
        "How long a worker's answer waits in Redis for an API process that has gone.",
    ),
    Setting(
        "SCORE_PASS_BUDGET_MS",
        250,
        "Longest backlog pass a worker plans (from its measured speed), so a synchronous "
        "request waits behind at most one such pass; 0 plans by `SCORE_BATCH_MAX` alone.",
    ),
    Setting(
        "MODEL_WINDOW_OVERLAP",
        32,
        "Tokens shared by consecutive windows when a text is longer than `MODEL_MAX_TOKENS`: "
        "long texts are read whole in overlapping windows, each label scoring its maximum.",
    ),
    Setting(
        "MODEL_MAX_WINDOWS",
        16,
        "Most windows read per text; a text longer still is scored on its first windows and "
        "carries the reason `truncated`.",
    ),
    Setting(
        "SERVE_THREADS",
        16,
        "Threads per gunicorn worker of `civility serve` (gthread): a request waiting for a "
        "synchronous score holds a thread, never a whole process.",
    ),
    Setting(
        "CORAL_SECRET_OVERLAP_S",
        3600,
        "After a Coral signing secret is replaced, how long the previous one still verifies.",
    ),
)

DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}

# Settings that were renamed: setting the old name is an error, not silently ignored.
RENAMED = {"MODEL_QUANTIZE": "MODEL_PRECISION (none is now fp32)"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def coerce(name: str, value: Any) -> Any:
    """Convert an environment string to the type of the setting's default."""
    default = DEFAULTS.get(name)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"CIVILITY_{name}: expected a boolean (true/false), got {value!r}")
    if isinstance(default, int | float) and not isinstance(value, bool):
        try:
            return type(default)(value)
        except (TypeError, ValueError):
            kind = type(default).__name__
            raise ValueError(f"CIVILITY_{name}: expected {kind}, got {value!r}") from None
    if isinstance(default, str) and not isinstance(value, str):
        return str(value)
    return value


def settings_table() -> str:
    """The README's configuration table, generated from SETTINGS."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        if s.default is None:
            default = "—"
        elif isinstance(s.default, bool):
            default = f"`{str(s.default).lower()}`"
        else:
            default = f"`{s.default}`"
        rows.append(f"| `CIVILITY_{s.name}` | {default} | {s.meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")
