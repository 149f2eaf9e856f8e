"""The browser's consent and opt-out: two plain form posts a banner can use without script."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import consent


@require_POST
def give(request: HttpRequest) -> HttpResponse:
    """``POST`` (CSRF-protected, ``next=<path>``): track me and personalise."""
    return _choose(request, True)


@require_POST
def withdraw(request: HttpRequest) -> HttpResponse:
    """``POST`` (CSRF-protected, ``next=<path>``): opt out, for good, on this browser and
    on the account when signed in."""
    return _choose(request, False)


def _choose(request: HttpRequest, allowed: bool) -> HttpResponse:
    consent.remember(request, allowed)
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = HttpResponseRedirect(target)
    consent.write_cookie(request, response, allowed)
    return response
