"""Settings of scoring: which scorers, language routing, the model runtime, the stream the
worker reads, sweeping, and the synchronous analyze path."""

from __future__ import annotations

from service.settings.setting import Setting

SETTINGS: tuple[Setting, ...] = (
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
        "brief",
        "How the worker's idle torch threads wait (OpenMP's `OMP_WAIT_POLICY`, "
        "`GOMP_SPINCOUNT` and `KMP_BLOCKTIME`, unless one of them is set): `brief` polls a "
        "few hundred times, then sleeps, which keeps a pass's threads awake between its "
        "operators but frees the cores between passes; `passive` sleeps at once; `active` "
        "spins, which only a worker on cores of its own can afford.",
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
        "throughput on CPUs that multiply bf16 in hardware (Intel AMX: Xeon 4th generation "
        "and later; AVX512-BF16: AMD Zen 4 and later); probabilities move by about 0.001 "
        "and no held-out comment changed sides of the default thresholds "
        "(`bench/precision.py`). `int8` (CPU only): 2-4x the throughput, but about 2% of "
        "comments change sides. `auto`: bf16 on such a CPU, fp32 elsewhere (on GPUs fp32 "
        "measured faster). Comments scored at bf16 or int8 carry `…+bf16` / `…+int8` in "
        "`model`.",
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
        "ANALYZE_TIMEOUT_MS",
        700,
        "Deadline of a synchronous scoring request (Perspective, OpenAI and Coral faces): past "
        "it the API answers 503 and the worker drops the request unscored (at once where no "
        "pass could score it in time). Coral gives up at 800 ms and publishes the comment "
        "unscored.",
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
        "Longest backlog pass a worker plans (from its measured speed); synchronous requests "
        "are answered between passes (and between layers: `SCORE_YIELD_MS`); 0 plans by "
        "`SCORE_BATCH_MAX` alone.",
    ),
    Setting(
        "SCORE_YIELD_MS",
        20,
        "How often, at most, a backlog pass lets waiting synchronous requests in between its "
        "model's layers (one Redis read each): a request waits for about one layer of the "
        "pass in progress, not all of it; 0 lets them in between passes only.",
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
)
