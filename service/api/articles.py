"""Articles: the pages comments belong to, registered by the site (``PUT /v1/articles/{ref}``)."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api.common import (
    REF_PARAM,
    CleanString,
    DateTimeIn,
    article_or_404,
    check_ref,
)
from service.api.schemas import StatusCounts
from service.auth import Role, require
from service.extensions import db, get_or_create
from service.models import Article, Comment
from service.moderation.states import CommentStatus, Mode

blp = Blueprint(
    "articles", __name__, url_prefix="/v1/articles", description="Articles that comments belong to."
)
SECURITY = [{"bearerAuth": ["site"]}]  # the least role allowed (OpenAPI 3.1 roles)


class ArticleIn(ma.Schema):
    url = ma.fields.Url(
        allow_none=True,
        validate=ma.validate.Length(max=2000),
        metadata={"description": "Canonical URL of the page."},
    )
    title = CleanString(allow_none=True, validate=ma.validate.Length(max=500))
    comments_open = ma.fields.Boolean(metadata={"description": "False refuses new comments (409)."})
    mode = ma.fields.String(
        allow_none=True,
        validate=ma.validate.OneOf([m.value for m in Mode]),
        metadata={
            "description": "Per-article override of the site's mode (`post`/`pre`); "
            "null uses the site's."
        },
    )
    published_at = DateTimeIn(allow_none=True, default_timezone=None)  # naive: 422


class ArticleOut(ma.Schema):
    ref = ma.fields.String()
    url = ma.fields.String(allow_none=True)
    title = ma.fields.String(allow_none=True)
    comments_open = ma.fields.Boolean()
    mode = ma.fields.String(allow_none=True)
    published_at = ma.fields.AwareDateTime(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()
    counts = ma.fields.Nested(StatusCounts, metadata={"description": "Comments by status."})


def status_counts(article: Article) -> dict[str, int]:
    """Comments of ``article`` per status (every status present, zero when none)."""
    rows = db.session.execute(
        sa.select(Comment.status, sa.func.count())
        .where(Comment.article_id == article.id)
        .group_by(Comment.status)
    )
    counts = {status.value: 0 for status in CommentStatus}
    counts.update({status: n for status, n in rows})
    return counts


def render(article: Article) -> dict:
    """The article as ArticleOut expects it."""
    fields = (
        "ref",
        "url",
        "title",
        "comments_open",
        "mode",
        "published_at",
        "created_at",
        "updated_at",
    )
    out = {name: getattr(article, name) for name in fields}
    out["counts"] = status_counts(article)
    return out


@blp.route("/<ref>", parameters=[REF_PARAM])
class ArticleResource(MethodView):
    decorators = [require(Role.SITE)]

    @blp.doc(security=SECURITY)
    @blp.response(200, ArticleOut)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, ref: str):
        """Read an article with its comment counts by status."""
        return render(article_or_404(ref))

    @blp.doc(security=SECURITY)
    @blp.arguments(ArticleIn)
    @blp.response(200, ArticleOut)
    def put(self, fields: dict, ref: str):
        """Create an article, or update the fields given (others are kept)."""
        article = get_or_create(Article, site_id=g.site.id, ref=check_ref(ref))
        for name, value in fields.items():
            setattr(article, name, value)
        db.session.commit()
        return render(article)
