"""Which purchases are the shop's own word: the only ones that count for everybody.

Popular, trending, bought together, attributed revenue and A/B results are shared by every
shopper, so a purchase counts there only when the shop's server vouches for it. The mark is
the namespace of the row's ``client_event_id``, which only server code can write:

- ``order:<order pk>:<line>``: the ``order_paid`` receiver;
- ``import:<invoice>:<line>``: the demo import (and any loader written like it);
- ``server:<id or random>``: :func:`recommendations.tracking.record` called by the shop's
  own code (it gives every purchase an id in this namespace, see :func:`server_event_id`);
- ``api:<integration user pk>/<id>``: a server integration of the events API (a user with
  ``recommendations.add_interaction``).

What an API client sends is always stored as ``u<user pk>/<id>`` or ``v<visitor id>/<id>``
(``tracking.shopper_event_id``), so a client cannot write into these namespaces. Rows
without an id, and the Redis buffer's ``buffer:`` ids, are not verified: purchases stored
that way came from before this rule (or from a client) and no longer count.
"""

from __future__ import annotations

import hashlib
import uuid

from django.db.models import Q

from .models import Event, Interaction

#: The ``client_event_id`` namespaces of server-verified purchases. None begins with "u" or
#: "v", the first letters of the namespaces clients' ids are stored in.
VERIFIED_PREFIXES = ("order:", "import:", "server:", "api:")
SERVER_PREFIX = "server:"
MAX_EVENT_ID_LENGTH = Interaction._meta.get_field("client_event_id").max_length


def is_verified_event_id(client_event_id: str | None) -> bool:
    """Whether an event id is in a namespace only the shop's server writes."""
    return bool(client_event_id) and client_event_id.startswith(VERIFIED_PREFIXES)


def server_event_id(client_event_id: str | None) -> str:
    """The id a purchase recorded by server code is stored under: kept when it already is in
    a verified namespace, else moved into ``server:`` (random when there is none, hashed when
    the prefix would make it too long). The same id always maps to the same stored id, so
    retries are still de-duplicated."""
    if client_event_id is None:
        return f"{SERVER_PREFIX}{uuid.uuid4().hex}"
    if is_verified_event_id(client_event_id):
        return client_event_id
    stored = f"{SERVER_PREFIX}{client_event_id}"
    if len(stored) > MAX_EVENT_ID_LENGTH:
        stored = f"{SERVER_PREFIX}sha256:{hashlib.sha256(client_event_id.encode()).hexdigest()}"
    return stored


def verified_q(prefix: str = "") -> Q:
    """Rows whose ``client_event_id`` is verified (``prefix``: a relation path, ``"x__"``)."""
    q = Q()
    for namespace in VERIFIED_PREFIXES:
        q |= Q(**{f"{prefix}client_event_id__startswith": namespace})
    return q


def verified_purchases_q() -> Q:
    """Purchases that count for popularity, baskets, revenue and experiments."""
    return Q(event=Event.PURCHASE) & verified_q()
