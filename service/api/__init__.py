"""HTTP API v1: one flask-smorest blueprint per resource."""

from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    """Register every blueprint on the app's Api."""
    from service.api import articles, comments, health, site

    for module in (health, articles, comments, site):
        api.register_blueprint(module.blp)
