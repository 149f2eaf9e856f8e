"""Anonymous visitor ids that the server vouches for.

Whoever presents a visitor id reads that visitor's "for you" list (built from their history)
and adds to their events. Browsers get theirs in a signed cookie (``VisitorMiddleware``).
API clients (mobile apps) get one from ``POST /api/recommendations/visitors/``: a random id
signed with the ``SECRET_KEY``, which they keep and send back as ``X-Visitor-Id`` or as the
events' ``visitor_id``. An id the server did not sign is refused, so a client cannot pick a
short, guessable id, nor present a browser visitor's raw cookie id, nor walk through ids.
``RECOMMENDATIONS["ACCEPT_UNSIGNED_VISITOR_IDS"] = True`` accepts bare ids (8-64 letters,
digits, ``-`` or ``_``) for apps that mint their own; that gives up this protection.
"""

from __future__ import annotations

import re
import uuid

from django.core import signing

from ..conf import app_settings

#: What a visitor id itself looks like (a signed one adds ``:<signature>``); use fullmatch.
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
#: The longest value a client may send: a 64-character id, ':' and a SHA-256 signature.
MAX_CLIENT_VALUE_LENGTH = 64 + 1 + 43
SALT = "recommendations.visitor-id"
NOT_ISSUED = (
    "Not a visitor id this server issued: get one from POST /api/recommendations/visitors/."
)


def sign(visitor_id: str) -> str:
    """The value an API client presents for ``visitor_id``."""
    return signing.Signer(salt=SALT).sign(visitor_id)


def mint() -> str:
    """A new random visitor id, signed."""
    return sign(uuid.uuid4().hex)


def from_client(value: str | None) -> str | None:
    """The visitor id behind a value a client sent, or None where it is not to be trusted.

    Signed by :func:`sign`: the id. Unsigned: the id only if
    ``ACCEPT_UNSIGNED_VISITOR_IDS``. Either way it must look like a visitor id.
    """
    if not value or len(value) > MAX_CLIENT_VALUE_LENGTH or not value.isascii():
        return None
    try:
        visitor_id = signing.Signer(salt=SALT).unsign(value)
    except signing.BadSignature:
        if not app_settings.ACCEPT_UNSIGNED_VISITOR_IDS:
            return None
        visitor_id = value
    return visitor_id if VISITOR_ID.fullmatch(visitor_id) else None
