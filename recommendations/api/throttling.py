"""Rate limits keyed on who a client provably is: its user, else its network address.

An anonymous client's visitor id is its own claim (a mobile app sends it in a header or the
body; a script can rotate it at will), so it never keys a limit. The address is the one DRF
trusts: ``REMOTE_ADDR``, or the right ``X-Forwarded-For`` hop when ``NUM_PROXIES`` says how
many proxies stand in front of the site. Leaving ``NUM_PROXIES`` unset behind no proxy would
let a client name its own address in that header; the demo shop sets it (``0`` by default).
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle

from ..conf import app_settings
from ..tracking.ratelimit import client_address, count_in_window


class ShopperRateThrottle(SimpleRateThrottle):
    """Per signed-in user, else per client address; the rate is the app setting named by
    ``rate_setting`` (``None`` there switches the limit off).

    A fixed-window counter (one ``add`` or ``incr`` in the cache per request) instead of
    DRF's sliding log, which stores and rewrites a timestamp per request in the window: at
    a read rate of 1,200 a minute that is a 1,200-entry list per request. The window opens
    at a client's first request and closes ``duration`` seconds later; a client can burst
    to twice the rate across two windows, which is fine for abuse control.
    """

    rate_setting = ""

    def get_rate(self) -> str | None:
        return getattr(app_settings, self.rate_setting)

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"u{user.pk}"
        else:
            ident = f"a{client_address(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        return count_in_window(self.cache, key, self.duration) <= self.num_requests

    def wait(self) -> float:
        return float(self.duration)  # at most a whole window (its start is not stored)


class EventsThrottle(ShopperRateThrottle):
    """POSTs to the events endpoint (``EVENTS_RATE``)."""

    scope = "recommendations_events"
    rate_setting = "EVENTS_RATE"


class VisitorsThrottle(ShopperRateThrottle):
    """New visitor ids (``VISITORS_RATE``): an app asks once per install."""

    scope = "recommendations_visitors"
    rate_setting = "VISITORS_RATE"


class ReadsThrottle(ShopperRateThrottle):
    """Reads of the list endpoints (``READS_RATE``): each one also logs its impressions."""

    scope = "recommendations_reads"
    rate_setting = "READS_RATE"
