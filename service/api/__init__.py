"""HTTP API v1: one flask-smorest blueprint per resource."""

from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    """Register every blueprint on the app's Api."""
    from service.api import (
        articles,
        authors,
        comments,
        decisions,
        embed,
        health,
        queue,
        site,
        stats,
        webhooks,
    )

    for module in (
        health,
        articles,
        comments,
        site,
        webhooks,
        queue,
        decisions,
        authors,
        stats,
        embed,
    ):
        api.register_blueprint(module.blp)
