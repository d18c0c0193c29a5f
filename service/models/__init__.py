"""Database models, re-exported so ``from service.models import X`` names every one.

``content`` holds what is moderated (sites, keys, articles, authors, comments, events,
reports, bulk actions); ``integrations`` what surrounds it (webhooks, analyze feedback,
Coral secrets, dashboard sessions, daily stats); ``types`` the shared column types.
Importing this package registers every table on ``db.metadata``, which migrations read.
"""

from service.models.content import (
    EVENT_STATS_COLUMNS,
    ApiKey,
    Article,
    Author,
    BulkAction,
    Comment,
    ModerationEvent,
    Report,
    Site,
    SiteEvent,
)
from service.models.integrations import (
    AnalyzeFeedback,
    ArticleStatusCount,
    CoralSecret,
    DashboardSession,
    DayStatusCount,
    StatsDay,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from service.models.types import BigId, UTCDateTime, utcnow

__all__ = [
    "EVENT_STATS_COLUMNS",
    "AnalyzeFeedback",
    "ApiKey",
    "Article",
    "ArticleStatusCount",
    "Author",
    "BigId",
    "BulkAction",
    "Comment",
    "CoralSecret",
    "DashboardSession",
    "DayStatusCount",
    "ModerationEvent",
    "Report",
    "Site",
    "SiteEvent",
    "StatsDay",
    "UTCDateTime",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "utcnow",
]
