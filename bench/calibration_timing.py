"""How fast a site's calibration answers, for bench/calibration.py.

Sites of 1,000 … 1,000,000 comments, each decided by a moderator, seeded straight through
SQL; GET /v1/site/calibration answered through the real routes (Flask's test client, in
this process) with its wall time and this process's peak memory.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any


def seed(engine: Any, site_id: int, count: int, model: str, rng: random.Random) -> None:
    """``count`` comments of one site, each scored, held by the policy and decided by a
    moderator (rejected with probability = its score), inserted with Core in chunks."""
    import sqlalchemy as sa

    from service.models import Article, Author, Comment, ModerationEvent, utcnow

    now = utcnow()
    with engine.begin() as conn:
        article = conn.execute(
            sa.insert(Article).values(site_id=site_id, ref="seeded").returning(Article.id)
        ).scalar()
        author = conn.execute(
            sa.insert(Author)
            .values(site_id=site_id, ref="seeded", name="Seeded")
            .returning(Author.id)
        ).scalar()
        first = (conn.execute(sa.select(sa.func.max(Comment.id))).scalar() or 0) + 1
        event_id = (conn.execute(sa.select(sa.func.max(ModerationEvent.id))).scalar() or 0) + 1
    chunk = 20_000
    for start in range(0, count, chunk):
        comments, events = [], []
        for i in range(start, min(count, start + chunk)):
            score = rng.random() ** 3
            rejected = rng.random() < score
            created = now - timedelta(minutes=rng.randrange(30 * 24 * 60))
            comment_id = first + i
            status = "rejected" if rejected else "approved"
            comments.append(
                {
                    "id": comment_id,
                    "site_id": site_id,
                    "article_id": article,
                    "author_id": author,
                    "body": f"seeded comment {i}",
                    "status": status,
                    "scores": {"toxicity": score},
                    "model": model,
                    "reasons": [],
                    "max_score": score,
                    "created_at": created,
                    "scored_at": created,
                    "decided_at": created,
                    "decided_by": "mod",
                }
            )
            for n, (actor, before, after) in enumerate(
                (("policy", "pending", "held"), ("mod", "held", status))
            ):
                events.append(
                    {
                        "id": event_id + 2 * i + n,
                        "site_id": site_id,
                        "comment_id": comment_id,
                        "from_status": before,
                        "to_status": after,
                        "actor": actor,
                        "model": model if actor == "policy" else None,
                        "created_at": created,
                    }
                )
        with engine.begin() as conn:
            conn.execute(sa.insert(Comment), comments)
            conn.execute(sa.insert(ModerationEvent), events)


def timing(sizes: list[int], database_url: str, instance: str, model: str) -> list[dict[str, Any]]:
    """Seed one site per size, scored by ``model``, then time its calibration through the
    real route."""
    import sqlalchemy as sa
    from bulk import reset_peak, rss_mib

    from service import create_app
    from service.auth import Role, create_key
    from service.extensions import db
    from service.models import Site

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": instance,
            "SECRET_KEY": "bench",
            "RATELIMIT_ENABLED": False,
            "SCORER": model,
        }
    )
    rng = random.Random(7)
    out = []
    with app.app_context():
        for size in sizes:
            site = Site(name=f"Seeded {size}")
            db.session.add(site)
            db.session.flush()
            key = create_key(site, Role.MODERATOR, f"mod-{size}")
            site_id = site.id
            db.session.commit()
            db.session.remove()  # SQLite: an open session would hold the write lock
            t0 = time.monotonic()
            seed(db.engine, site_id, size, f"{model}@bench", rng)
            seed_s = time.monotonic() - t0
            client = app.test_client()
            runs = []
            reset_peak()
            before = rss_mib("VmRSS")
            for _ in range(1 if size >= 500_000 else 3):
                t0 = time.monotonic()
                answer = client.get(
                    "/v1/site/calibration", headers={"Authorization": f"Bearer {key}"}
                )
                runs.append(time.monotonic() - t0)
                assert answer.status_code == 200, answer.get_json()
            body = answer.get_json()
            cap = app.config["CALIBRATION_MAX_DECISIONS"]
            assert body["decisions"] == min(size, cap), (body["decisions"], size, cap)
            row = {
                "decisions": size,
                "seconds": round(min(runs), 3),
                "peak_rss_mib": round(rss_mib("VmHWM") - before, 1),
                "seed_s": round(seed_s, 1),
                "read": body["decisions"],
            }
            out.append(row)
            print(
                f"  {size:>9,} decisions: {row['seconds']:.3f} s, +{row['peak_rss_mib']} MiB",
                flush=True,
            )
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        db.engine.dispose()
    return out
