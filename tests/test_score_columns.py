"""Each label's score has its own column: moderate() writes it, the migration backfills it,
``civility counts rebuild`` repairs it, and the held score indexes carry it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from service import create_app
from service.extensions import db, get_or_create
from service.models import Article, Author, Comment, Site, utcnow
from service.moderation.policy import LABELS
from service.score_key import column
from tests.conftest import BACKENDS, REDIS_URL, drop_postgres_database, postgres_database
from tests.review_helpers import make_comments, policy_decides
from tests.test_operations import run_cli

BEFORE = "a7d3e9c1b5f2"  # the revision before the score columns
SCORES = {"toxicity": 0.93, "insult": 0.41, "threat": 0.02}


def columns(comment_id: int) -> dict[str, float | None]:
    """The comment's max_score and label columns, as stored."""
    names = [column(None), *(column(label) for label in LABELS)]
    row = db.session.execute(
        sa.select(*(getattr(Comment, name) for name in names)).where(Comment.id == comment_id)
    ).one()
    return dict(zip(names, row, strict=True))


def expected(scores: dict[str, float]) -> dict[str, float | None]:
    return {
        column(None): max(scores.values()),
        **{column(label): scores.get(label) for label in LABELS},
    }


def test_the_model_has_a_column_for_every_label():
    assert {column(label) for label in LABELS} <= set(Comment.__table__.columns.keys())


def test_scoring_copies_each_labels_score_into_its_column(app, site):
    [cid] = make_comments(site.id)
    policy_decides([cid], "held", scores=SCORES)
    db.session.expire_all()
    assert columns(cid) == expected(SCORES)
    # A later scoring (a rescore) replaces every column, labels it lacks included.
    comment = db.session.get(Comment, cid)
    assert comment.status == "held"
    policy_decides([cid], "approved", scores={"toxicity": 0.1})
    db.session.expire_all()
    assert columns(cid) == expected({"toxicity": 0.1})


def test_counts_rebuild_refills_columns_that_differ_from_the_scores(app, site, other_site):
    ids = make_comments(site.id, 3)
    [other] = make_comments(other_site.id)
    policy_decides([*ids, other], "held", scores=SCORES)
    # As code older than the columns leaves them: scores written, columns not.
    db.session.execute(
        sa.update(Comment)
        .where(Comment.id.in_([ids[0], ids[1], other]))
        .values({column(label): None for label in LABELS})
    )
    db.session.commit()
    answer = run_cli(app, "counts", "rebuild", "--site", str(site.id))
    assert answer["score_columns_fixed"] == 2
    db.session.expire_all()
    for cid in ids:
        assert columns(cid) == expected(SCORES)
    assert columns(other)[column("toxicity")] is None  # another site's, left alone
    assert run_cli(app, "counts", "rebuild")["score_columns_fixed"] == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_backfills_the_columns_and_swaps_the_indexes(backend, tmp_path):
    if backend not in BACKENDS:
        pytest.skip(f"{backend} not in CIVILITY_TEST_DATABASES")
    name = "civility_score_columns_check"
    url = postgres_database(name) if backend == "postgresql" else f"sqlite:///{tmp_path}/m.db"
    app = create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "test",
            "REDIS_URL": REDIS_URL,
        }
    )
    try:
        with app.app_context():
            upgrade(revision=BEFORE)
            scored = _insert_comments([SCORES, {"toxicity": 0.2, "sexual_explicit": 0.7}, None, {}])
            upgrade()
            for comment_id, scores in scored.items():
                want = expected(scores) if scores else {}
                got = columns(comment_id)
                assert {k: v for k, v in got.items() if k != "max_score"} == {
                    column(label): want.get(column(label)) for label in LABELS
                }
            assert "score_toxicity" in _index_sql(backend, "ix_comment_held_toxicity_score")
            if backend == "postgresql":
                assert "INCLUDE (score_toxicity)" in _index_sql(
                    backend, "ix_comment_held_toxicity_score"
                )
                assert "INCLUDE (max_score)" in _index_sql(backend, "ix_comment_held_max_score")
            db.session.commit()
            downgrade(revision=BEFORE)
            assert "scores" in _index_sql(backend, "ix_comment_held_toxicity_score")
            assert "score_toxicity" not in _table_columns()
            upgrade()
            assert "score_toxicity" in _table_columns()
            db.session.remove()
            db.engine.dispose()
    finally:
        if backend == "postgresql":
            drop_postgres_database(name)


def _insert_comments(all_scores: list[dict[str, float] | None]) -> dict[int, dict | None]:
    """Comments scored ``all_scores``, inserted as code before the columns did: the
    scores and max_score only (the other tables are as the models say)."""
    site = Site(name="Migrated News")
    db.session.add(site)
    db.session.flush()
    article = get_or_create(Article, site_id=site.id, ref="a")
    author = get_or_create(Author, site_id=site.id, ref="r", defaults={"name": "r"})
    scored = {}
    for n, scores in enumerate(all_scores):
        values = {
            "site_id": site.id,
            "article_id": article.id,
            "author_id": author.id,
            "body": f"comment {n}",
            "status": "held" if scores else "pending",
            "scores": scores,
            "max_score": max(scores.values()) if scores else None,
            "created_at": utcnow(),
        }
        inserted = db.session.execute(sa.insert(Comment).values(values).returning(Comment.id))
        scored[inserted.scalar_one()] = scores
    db.session.commit()
    return scored


def _index_sql(backend: str, name: str) -> str:
    if backend == "postgresql":
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    else:
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    return db.session.scalar(sa.text(query), {"name": name})


def _table_columns() -> set[str]:
    db.session.remove()
    return {c["name"] for c in sa.inspect(db.engine).get_columns("comment")}
