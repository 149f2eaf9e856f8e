"""Whether a POST came from another site: the click beacon takes no CSRF token.

``navigator.sendBeacon`` cannot send a CSRF header, so the beacon is ``csrf_exempt``; without
a check, any page on the web could make its visitors' browsers post clicks here and skew the
shop's click-through rates and A/B results. Browsers say where a request comes from:
``Sec-Fetch-Site`` (every current browser), else ``Origin``, else ``Referer``. A request
that carries none of them (an old client, a privacy extension that strips ``Referer``) is
let through: refusing it would lose real clicks, and the worst forgery is one click event.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest


def is_cross_site(request: HttpRequest) -> bool:
    """True when the browser says the request came from another site or host."""
    if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
        return True
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return False
    if source.strip() == "null":  # an opaque origin (sandboxed frame, data: URL): not ours
        return True
    parts = urlsplit(source.strip())
    if not parts.scheme or not parts.netloc:
        return True
    if f"{parts.scheme}://{parts.netloc}" in getattr(settings, "CSRF_TRUSTED_ORIGINS", []):
        return False
    return parts.netloc.lower() != request.get_host().lower()
