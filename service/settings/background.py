"""Settings of the background jobs: retention and pruning, calibration, and webhook delivery."""

from __future__ import annotations

from service.settings.setting import Setting

SETTINGS: tuple[Setting, ...] = (
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
        "WEBHOOK_ALLOW_PRIVATE",
        False,
        "Allow webhook URLs on loopback/private networks. Needed for local tests "
        "(`scripts/run` turns it on when it listens on loopback); dangerous in production "
        "(SSRF).",
    ),
)
