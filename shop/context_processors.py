from django.http import HttpRequest

from .cart import SESSION_KEY


def cart(request: HttpRequest) -> dict:
    """The cart's item count for the header, without touching the database."""
    session = getattr(request, "session", None)
    items = session.get(SESSION_KEY, {}) if session is not None else {}
    return {"cart_count": sum(items.values())}
