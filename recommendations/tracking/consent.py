"""Whether a shopper may be tracked: their lasting choice, and what the law asks before one.

A choice lasts where the shopper is: on the account (:class:`ShopperConsent`) for a signed-in
user, under the visitor id for an API client that sends ``X-Visitor-Id``, and in a signed
cookie on the browser (kept through log-in and log-out). An account's choice wins over the
browser's. With ``REQUIRE_CONSENT`` nobody is tracked before choosing; without it, everybody
is until they opt out. The adapter's :meth:`~recommendations.adapters.DefaultAdapter.is_opted_out`
(the session flag, the browser's Global Privacy Control) always has the last word: it can
only say no.

The answer is kept on the request (per signed-in user, so a log-in or log-out in the middle
of a request is seen): one query per request for a signed-in shopper, none for a visitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.signing import BadSignature
from django.http import HttpRequest, HttpResponse

from ..adapters import get_adapter
from ..conf import app_settings
from ..models import CustomerInsight, ShopperConsent
from . import visitors

SALT = "recommendations.consent"
YES, NO = "yes", "no"
_MEMO = "_recommendations_consent"


@dataclass(frozen=True)
class ConsentState:
    """What a consent banner needs to know."""

    required: bool  # REQUIRE_CONSENT
    choice: bool | None  # the shopper's lasting choice; None: they have not chosen
    allowed: bool  # whether they are tracked now (the choice, the default, GPC)

    @property
    def decided(self) -> bool:
        return self.choice is not None

    @property
    def ask(self) -> bool:
        """Show the banner: consent is required and the shopper has not chosen."""
        return self.required and self.choice is None


def _user(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _api_visitor_id(request: HttpRequest) -> str | None:
    header = request.headers.get("X-Visitor-Id") if hasattr(request, "headers") else None
    return visitors.from_client(header) if header else None


def choice(request: HttpRequest | None) -> bool | None:
    """The shopper's lasting choice: True (consented), False (opted out), None (not asked)."""
    if request is None:
        return None
    user = _user(request)
    owner = user.pk if user is not None else None
    memo = getattr(request, _MEMO, None)
    if memo is not None and memo[0] == owner:
        return memo[1]
    value = _stored_choice(request, user)
    setattr(request, _MEMO, (owner, value))
    return value


def _stored_choice(request: HttpRequest, user: Any) -> bool | None:
    if user is not None:
        row = ShopperConsent.objects.filter(user=user).values_list("tracking_allowed").first()
        if row is not None:
            return row[0]
    else:
        visitor_id = _api_visitor_id(request)
        if visitor_id:
            row = (
                ShopperConsent.objects.filter(visitor_id=visitor_id)
                .values_list("tracking_allowed")
                .first()
            )
            if row is not None:
                return row[0]
    try:
        cookie = request.get_signed_cookie(
            app_settings.CONSENT_COOKIE_NAME, default=None, salt=SALT
        )
    except BadSignature:
        cookie = None
    return {YES: True, NO: False}.get(cookie or "")


def tracking_allowed(request: HttpRequest | None) -> bool:
    """True when this request's shopper may be tracked and shown personal lists.

    Without a request (a task, an import) there is no shopper to ask: the caller decides.
    """
    if request is None:
        return True
    if get_adapter().is_opted_out(request):
        return False
    chosen = choice(request)
    return chosen if chosen is not None else not app_settings.REQUIRE_CONSENT


def visitor_declined(visitor_id: str | None) -> bool:
    """Whether an API client's visitor id opted out: for events that name it in the body
    rather than in ``X-Visitor-Id``."""
    return bool(visitor_id) and (
        ShopperConsent.objects.filter(visitor_id=visitor_id, tracking_allowed=False).exists()
    )


def state(request: HttpRequest | None) -> ConsentState:
    return ConsentState(
        required=bool(app_settings.REQUIRE_CONSENT),
        choice=choice(request),
        allowed=tracking_allowed(request),
    )


def remember(request: HttpRequest, allowed: bool, visitor_id: str | None = None) -> None:
    """Keep a choice where it lasts: on the signed-in user's account, else under an API
    client's visitor id (browsers: :func:`write_cookie` too). Opting out also drops the
    shopper's insights row: opted-out shoppers are not scored."""
    user = _user(request)
    if user is not None:
        ShopperConsent.objects.update_or_create(user=user, defaults={"tracking_allowed": allowed})
        if not allowed:
            CustomerInsight.objects.filter(user=user).delete()
    elif visitor_id:
        ShopperConsent.objects.update_or_create(
            visitor_id=visitor_id, defaults={"tracking_allowed": allowed}
        )
    if allowed:  # an explicit consent replaces an older opt-out kept in the session
        session = getattr(request, "session", None)
        if session is not None:
            session.pop(app_settings.OPT_OUT_SESSION_KEY, None)
    setattr(request, _MEMO, (user.pk if user is not None else None, allowed))


def write_cookie(request: HttpRequest, response: HttpResponse, allowed: bool) -> None:
    """The browser's copy of the choice: signed, so a script on another site can't forge it."""
    response.set_signed_cookie(
        app_settings.CONSENT_COOKIE_NAME,
        YES if allowed else NO,
        salt=SALT,
        max_age=app_settings.CONSENT_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
