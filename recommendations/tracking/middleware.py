"""Gives every visitor a stable, signed, anonymous id (``request.recommendations_visitor_id``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.core.signing import BadSignature
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

from ..conf import app_settings

SALT = "recommendations.visitor"


class VisitorMiddleware:
    """Reads the visitor cookie, or mints one; the cookie is signed so ids can't be forged.

    The cookie is only written when new, so cached pages stay cacheable for returning
    visitors.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = app_settings.VISITOR_COOKIE_NAME
        try:
            visitor_id = request.get_signed_cookie(name, default=None, salt=SALT)
        except BadSignature:
            visitor_id = None
        is_new = not visitor_id
        if is_new:
            visitor_id = uuid.uuid4().hex
        request.recommendations_visitor_id = visitor_id
        response = self.get_response(request)
        if getattr(request, "recommendations_personal", False):
            mark_personal(response)
        if is_new:
            response.set_signed_cookie(
                name,
                visitor_id,
                salt=SALT,
                max_age=app_settings.VISITOR_COOKIE_MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response


def mark_personal(response: HttpResponse) -> None:
    """A response that shows one shopper's list: no shared cache may keep it, and a cache
    of the browser's own must key it on who asks."""
    patch_cache_control(response, private=True)
    patch_vary_headers(response, ("Cookie", "Authorization", "X-Visitor-Id"))
