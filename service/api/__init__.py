"""HTTP API v1: one flask-smorest blueprint per resource."""

from flask import Flask
from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    """Register every blueprint on the app's Api."""
    from service.api import (
        articles,
        authors,
        calibration,
        comments,
        decisions,
        embed,
        health,
        queue,
        sessions,
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
    api.register_blueprint(sessions.blp)
    api.register_blueprint(calibration.blp)


def register_dropins(app: Flask) -> None:
    """Register the drop-in faces (Perspective, OpenAI, Coral): plain Flask blueprints, as
    their contracts and error shapes are their vendors', outside Civility's OpenAPI."""
    from service.api import coral, moderations, perspective

    for module in (perspective, moderations, coral):
        app.register_blueprint(module.blp)
