"""HTTP API v1: one flask-smorest blueprint per resource."""

from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    """Register every blueprint on the app's Api."""
    from service.api import articles, comments, health

    for module in (health, articles, comments):
        api.register_blueprint(module.blp)
