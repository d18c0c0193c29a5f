"""Settings of the API process: storage, Redis, keys, rate limits, request sizes, pages,
bulk and simulation caps, the embed, sessions, logs, metrics and the server itself."""

from __future__ import annotations

from service.settings.setting import Setting

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
    Setting("SIMULATE_LIMIT", 10000, "Comments `/v1/site/simulate` replays by default."),
    Setting("SIMULATE_LIMIT_MAX", 100000, "Most comments one simulation may replay."),
    Setting("SIMULATE_SAMPLE", 20, "Comment ids a simulation answers per move."),
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
