"""Browsers (the embed widget): an article's count, comments and reports as a reader, with CORS."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from service import embed_tokens, logs, ratelimit
from service.api.common import REF_PARAM, CleanString, Id, check_ref
from service.auth import Role, actor_name, require
from service.embed_tokens import Reader
from service.errors import abort, alt_responses, field_error
from service.extensions import db, get_or_create
from service.models import Article, Author, Comment, Site, SiteEvent
from service.moderation import reports
from service.moderation import submit as submission
from service.moderation.reports import REPORT_REASONS
from service.moderation.states import CommentStatus
from service.moderation.submit import ArticleRow, AuthorRow

blp = Blueprint(
    "embed",
    __name__,
    url_prefix="/v1",
    description="What a browser may do: read an article's thread, comment and report as a "
    "reader (the site's `browser_submissions`), and follow its own comments' status.",
)
READER_SECURITY = [{}]  # a reader token (JWT) or none; never a site key
ADMIN_SECURITY = [{"bearerAuth": ["admin"]}]
READER_TOKEN_HEADER = "X-Civility-Reader-Token"
ACTOR = "browser"
# Statuses a reader sees of their own comment: held is still awaiting moderation.
PENDING = "pending"


class SiteArg(ma.Schema):
    site = Id(required=True, metadata={"description": "The site's id."})


class EmbedArticleOut(ma.Schema):
    article = ma.fields.String(metadata={"description": "The article's ref."})
    registered = ma.fields.Boolean(
        metadata={"description": "Whether the article exists yet (else it has no comments)."}
    )
    title = ma.fields.String(allow_none=True)
    comments_open = ma.fields.Boolean()
    count = ma.fields.Integer(metadata={"description": "Approved comments."})
    browser_submissions = ma.fields.String(metadata={"description": "off, sso or anonymous."})
    report_reasons = ma.fields.List(ma.fields.String())
    max_body_chars = ma.fields.Integer()
    poll_ms = ma.fields.Integer(metadata={"description": "How often to ask about own comments."})


class EmbedCommentIn(ma.Schema):
    body = CleanString(required=True, multiline=True)
    parent_id = Id(
        strict=True, allow_none=True, metadata={"description": "An approved comment to reply to."}
    )
    name = CleanString(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "Anonymous mode only: the name to show."},
    )

    @ma.validates("body")
    def _body(self, value: str, **kwargs: Any) -> None:
        if not value.strip():
            raise ma.ValidationError("Must not be empty or only whitespace.")
        limit = current_app.config["MAX_BODY_CHARS"]
        if len(value) > limit:
            raise ma.ValidationError(f"At most {limit} characters; this has {len(value)}.")


class EmbedAuthorOut(ma.Schema):
    name = ma.fields.String(allow_none=True)


class EmbedCommentOut(ma.Schema):
    id = ma.fields.Integer()
    parent_id = ma.fields.Integer(allow_none=True)
    author = ma.fields.Nested(EmbedAuthorOut)
    body = ma.fields.String()
    status = ma.fields.String(
        metadata={"description": "pending (also while held), approved, rejected or deleted."}
    )
    created_at = ma.fields.AwareDateTime()
    reader_token = ma.fields.String(
        metadata={"description": f"Keep it: send it as {READER_TOKEN_HEADER} to read the status."}
    )


class EmbedReportIn(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.OneOf(REPORT_REASONS))
    note = CleanString(allow_none=True, multiline=True, validate=ma.validate.Length(max=2000))


class EmbedReportOut(ma.Schema):
    id = ma.fields.Integer()
    comment_id = ma.fields.Integer()
    reason = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class EmbedSecretOut(ma.Schema):
    secret = ma.fields.String(metadata={"description": "The embed secret; shown only this once."})
    previous_secret_expires_at = ma.fields.AwareDateTime(
        allow_none=True, metadata={"description": "Until then the previous secret verifies too."}
    )


# What a reader's write (a comment, a report) may answer besides success: a bad or missing
# token, writes off or a foreign origin, an unknown article or comment, comments closed
# or a comment that refuses reports, too many requests.
READER_WRITE_ERRORS = (401, 403, 404, 409, 429)


def _site(site_id: int) -> Site:
    site = db.session.get(Site, site_id)
    if site is None:
        abort(404, f"No site {site_id}.")
    g.site = site
    return site


def _readable_site(site_id: int) -> Site:
    site = _site(site_id)
    if not site.public_reads:
        abort(403, f"Site {site_id} does not allow public reads (its public_reads is off).")
    return site


def _check_origin(site: Site) -> None:
    """403 unless the browser's Origin is one of the site's origins (writes only)."""
    origin = request.headers.get("Origin")
    if not origin:
        abort(403, "Browser writes need an Origin header naming one of the site's origins.")
    if origin not in (site.origins or []):
        abort(403, f"Origin {origin} is not one of this site's origins.")


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _reader(site: Site, name: str | None) -> Reader:
    """Who writes: the token's reader, or an anonymous name where the site allows it."""
    mode = site.browser_submissions
    if mode == "off":
        abort(403, "This site does not accept comments from browsers (browser_submissions off).")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if header:
        if scheme.lower() != "bearer" or not token.strip():
            abort(401, "Send the reader token as Authorization: Bearer <token>.")
        if name is not None:
            field_error("name", "A signed-in reader's name comes from the token.")
        return embed_tokens.verify(token.strip(), site)
    if mode == "sso":
        abort(
            401,
            "Sign in first: this site needs a reader token (Authorization: Bearer <token>).",
            headers={"WWW-Authenticate": 'Bearer realm="civility-embed"'},
        )
    if name is None or not name.strip():
        field_error("name", "Required for anonymous comments.")
    return embed_tokens.anonymous(site, name.strip(), _client_ip())


def _article(site: Site, ref: str) -> Article:
    article = db.session.scalar(
        sa.select(Article).where(Article.site_id == site.id, Article.ref == check_ref(ref))
    )
    if article is None:
        if not site.lazy_articles:
            abort(404, f"No article {ref!r} on this site.")
        article = get_or_create(Article, site_id=site.id, ref=ref)
    if not article.comments_open:
        abort(409, f"Comments are closed on article {ref!r}.")
    return article


def _approved_parent(article: Article, parent_id: int | None) -> int | None:
    """A reply's parent: an approved comment of the article (others are nobody's business)."""
    if parent_id is None:
        return None
    parent = db.session.get(Comment, parent_id)
    if parent is None or parent.article_id != article.id or parent.status != "approved":
        field_error("parent_id", "Must be a published comment of the same article.")
    return parent_id


def _author(site: Site, reader: Reader) -> Author:
    author = get_or_create(Author, site_id=site.id, ref=reader.ref, defaults={"name": reader.name})
    if author.name != reader.name:
        author.name = reader.name
    return author


def _reader_view(
    comment: Comment | submission.Submitted, token: str | None = None
) -> dict[str, Any]:
    status = comment.status
    return {
        "id": comment.id,
        "parent_id": comment.parent_id,
        "author": {"name": comment.author.name},
        "body": comment.body,
        "status": PENDING if status == CommentStatus.HELD else status,
        "created_at": comment.created_at,
        "reader_token": token,
    }


@blp.route("/embed/articles/<ref>", parameters=[REF_PARAM])
class EmbedArticle(MethodView):
    @blp.doc(security=[{}])
    @blp.arguments(SiteArg, location="query")
    @blp.response(200, EmbedArticleOut)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, args: dict, ref: str):
        """What the widget shows above a thread: the count, and what a reader may do."""
        ratelimit.check("ip", _client_ip())
        site = _readable_site(args["site"])
        article = db.session.scalar(
            sa.select(Article).where(Article.site_id == site.id, Article.ref == check_ref(ref))
        )
        count = 0
        if article is not None:
            count = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Comment)
                .where(Comment.article_id == article.id, Comment.status == "approved")
            )
        cfg = current_app.config
        return {
            "article": ref,
            "registered": article is not None,
            "title": article.title if article else None,
            "comments_open": article.comments_open if article else site.lazy_articles,
            "count": count,
            "browser_submissions": site.browser_submissions,
            "report_reasons": list(REPORT_REASONS),
            "max_body_chars": cfg["MAX_BODY_CHARS"],
            "poll_ms": cfg["EMBED_POLL_MS"],
        }


@blp.route("/embed/articles/<ref>/comments", parameters=[REF_PARAM])
class EmbedComments(MethodView):
    @blp.doc(security=READER_SECURITY)
    @blp.arguments(SiteArg, location="query")
    @blp.arguments(EmbedCommentIn())
    @blp.response(202, EmbedCommentOut)
    @alt_responses(blp, *READER_WRITE_ERRORS)
    def post(self, args: dict, fields: dict, ref: str):
        """Comment as a reader: stored as pending, scored by a worker, like any comment.

        Nothing here sets a status, scores or an author id: the author is the token's
        `sub` (sso) or derived from the name and IP (anonymous).
        """
        site = _site(args["site"])
        _check_origin(site)
        ratelimit.check("browser_ip", _client_ip())
        reader = _reader(site, fields.get("name"))
        ratelimit.check("author", f"{site.id}:{reader.ref}")
        article = _article(site, ref)
        parent_id = _approved_parent(article, fields.get("parent_id"))
        author = _author(site, reader)
        db.session.flush()  # a changed display name, before the Core insert reads it
        comment = submission.submit(
            site.id,
            ArticleRow(article.id, article.ref, article.url, article.title, article.comments_open),
            AuthorRow(author.id, author.ref, author.name),
            body=fields["body"],
            actor=ACTOR,
            parent_id=parent_id,
            client_ip=_client_ip(),
            meta={"via": "embed", "signed_in": reader.signed_in},
            request_id=logs.current_request_id(),
        )
        return _reader_view(comment, embed_tokens.reader_token(comment.id))


@blp.route("/embed/comments/<int:comment_id>")
class EmbedOwnComment(MethodView):
    @blp.doc(security=[{}])
    @blp.arguments(SiteArg, location="query")
    @blp.response(200, EmbedCommentOut)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, args: dict, comment_id: int):
        """The status of the reader's own comment, for the browser holding its reader token."""
        ratelimit.check("ip", _client_ip())
        site = _site(args["site"])
        token = request.headers.get(READER_TOKEN_HEADER, "")
        comment = db.session.get(Comment, comment_id)
        # One answer for unknown ids, other sites' comments and wrong tokens alike.
        if (
            comment is None
            or comment.site_id != site.id
            or not embed_tokens.reader_token_matches(comment.id, token)
        ):
            abort(404, f"No comment {comment_id} for this reader token.")
        return _reader_view(comment)


@blp.route("/embed/comments/<int:comment_id>/reports")
class EmbedReports(MethodView):
    @blp.doc(security=READER_SECURITY)
    @blp.arguments(SiteArg, location="query")
    @blp.arguments(EmbedReportIn)
    @blp.response(201, EmbedReportOut)
    @alt_responses(blp, *READER_WRITE_ERRORS)
    def post(self, args: dict, fields: dict, comment_id: int):
        """Report a published comment as a reader (the site's reports, with its requeue rule)."""
        site = _site(args["site"])
        _check_origin(site)
        ratelimit.check("browser_ip", _client_ip())
        if site.browser_submissions == "off":
            abort(403, "This site does not accept reports from browsers (browser_submissions off).")
        reporter = None
        if request.headers.get("Authorization") or site.browser_submissions == "sso":
            reporter = _reader(site, None).ref
        comment = db.session.get(Comment, comment_id)
        if comment is None or comment.site_id != site.id or comment.status != "approved":
            abort(404, f"No published comment {comment_id} on this site.")
        report = reports.file_report(
            comment.id,
            reason=fields["reason"],
            reporter=reporter or embed_tokens.anonymous(site, "", _client_ip()).ref,
            note=fields.get("note"),
            actor=ACTOR,
            requeue_reports=site.requeue_reports,
        )
        db.session.commit()
        return report


@blp.route("/site/embed-secret")
class EmbedSecret(MethodView):
    decorators = [require(Role.ADMIN)]

    @blp.doc(security=ADMIN_SECURITY)
    @blp.response(201, EmbedSecretOut)
    def post(self):
        """Make (or rotate) the site's embed secret; shown once. The old one verifies a while.

        After a rotation, tokens signed with the previous secret still verify for
        CIVILITY_EMBED_SECRET_OVERLAP_S. The change is audited (never the secret).
        """
        site: Site = g.site
        rotated = bool(site.embed_secret)
        secret = embed_tokens.rotate_secret(site, current_app.config["EMBED_SECRET_OVERLAP_S"])
        change = "rotated" if rotated else "created"
        db.session.add(
            SiteEvent(site_id=site.id, actor=actor_name(), changes={"embed_secret": [None, change]})
        )
        db.session.commit()
        return {
            "secret": secret,
            "previous_secret_expires_at": site.embed_previous_secret_expires_at,
        }


@blp.after_request
def _cors(response):
    """Let the site's own origins call these from the browser (no cookies, ever)."""
    if not request.path.startswith("/v1/embed/"):
        return response
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    site_id = request.args.get("site", "")
    if not origin or not site_id.isdigit() or len(site_id) > 19:
        return response
    site = g.get("site") or db.session.get(Site, int(site_id))
    if site is not None and origin in (site.origins or []):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = (
            f"Authorization, Content-Type, {READER_TOKEN_HEADER}"
        )
        response.headers["Access-Control-Max-Age"] = "600"
    return response
