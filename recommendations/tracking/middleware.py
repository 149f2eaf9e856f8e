"""Gives every visitor a stable, signed, anonymous id (``request.recommendations_visitor_id``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.core.signing import BadSignature
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

from ..conf import app_settings
from . import consent

SALT = "recommendations.visitor"


class VisitorMiddleware:
    """Reads the visitor cookie, or mints one; the cookie is signed so ids can't be forged.

    The cookie is only written when its id changes (new, or rotated at log-in and log-out
    by :func:`rotate`), so cached pages stay cacheable for returning visitors. A shopper
    who may not be tracked (no consent where ``REQUIRE_CONSENT`` asks for it, an opt-out)
    gets no id and loses the cookie they had: whether is asked again after the view, which
    may have changed the choice or who is signed in.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = app_settings.VISITOR_COOKIE_NAME
        try:
            cookie_id = request.get_signed_cookie(name, default=None, salt=SALT)
        except BadSignature:
            cookie_id = None
        if consent.tracking_allowed(request):
            request.recommendations_visitor_id = cookie_id or uuid.uuid4().hex
        else:
            request.recommendations_visitor_id = ""
        response = self.get_response(request)
        if getattr(request, "recommendations_personal", False):
            mark_personal(response)
        if not consent.tracking_allowed(request):
            if name in request.COOKIES:
                response.delete_cookie(name, samesite="Lax")
            return response
        visitor_id = request.recommendations_visitor_id or uuid.uuid4().hex  # consented now
        if visitor_id != cookie_id:
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


def rotate(request: HttpRequest) -> None:
    """Give the browser a new visitor id (written by the middleware with the response).

    Called at log-in and log-out: what one person does after signing out must never be
    matched to the account they left, nor to the next one signed in on that browser.
    """
    request.recommendations_visitor_id = uuid.uuid4().hex


def mark_personal(response: HttpResponse) -> None:
    """A response that shows one shopper's list: no shared cache may keep it, and a cache
    of the browser's own must key it on who asks."""
    patch_cache_control(response, private=True)
    patch_vary_headers(response, ("Cookie", "Authorization", "X-Visitor-Id"))
