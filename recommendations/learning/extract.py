"""The interaction log as a frame for ``ml/``: one streamed query, numpy columns.

Memory stays bounded by the result, not by Python objects per row: rows are fetched in
chunks from a server-side cursor (PostgreSQL) and each chunk is turned into numpy arrays
at once. Anonymous visitors get negative user codes, so the frame holds no strings per row.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import FloatField, Func

from ..models import Event, Interaction
from ..verified import verified_purchases_q

CHUNK = 50_000
EVENT_CATEGORIES = pd.CategoricalDtype(Event.values)


class EpochSeconds(Func):
    """A timestamp as float seconds since 1970, computed by the database.

    Why: a driver turns each timestamp into a Python ``datetime`` (SQLite even parses a
    string per row in Python); a float per row is read several times faster and becomes
    a numpy column at once.
    """

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM %(expressions)s)"

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
            **extra,
        )

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra
        )

    def as_mysql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="UNIX_TIMESTAMP(%(expressions)s)", **extra
        )


def visitor_code(visitor_id: str) -> int:
    """An anonymous visitor's user code: negative, and the same in every extract (the
    temporal protocol holds shoppers out by a stable hash of this id)."""
    digest = hashlib.blake2b(visitor_id.encode(), digest_size=8).digest()
    return -1 - (int.from_bytes(digest, "big") & (2**62 - 1))


def extract_log(
    since: datetime | None = None, until: datetime | None = None, chunk_size: int = CHUNK
) -> pd.DataFrame:
    """Columns ``user`` (int64: user pk, or a negative code per anonymous visitor), ``item``
    (int64 item pk), ``event`` (categorical) and ``timestamp`` (UTC). Sorted by nothing.
    Rows of no shopper (a guest order recorded without a request) are left out: they would
    make one shopper of every such guest."""
    qs = Interaction.objects.order_by().exclude(user__isnull=True, visitor_id="")
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lte=until)
    qs = qs.annotate(epoch=EpochSeconds("created_at"))
    columns = qs.values_list("user_id", "visitor_id", "item_id", "event", "epoch")
    sql, params = columns.query.sql_with_params()
    visitors: dict[str, int] = {}  # visitor id -> its code, hashed once per extract
    users, items, events, stamps = [], [], [], []
    cursor = connection.chunked_cursor()
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            user_col, visitor_col, item_col, event_col, time_col = zip(*rows, strict=True)
            user = np.array([-1 if u is None else u for u in user_col], dtype=np.int64)
            anonymous = np.flatnonzero(user < 0)
            for i in anonymous:
                code = visitors.get(visitor_col[i])
                if code is None:
                    code = visitors[visitor_col[i]] = visitor_code(visitor_col[i])
                user[i] = code
            users.append(user)
            items.append(np.fromiter(item_col, dtype=np.int64, count=len(rows)))
            events.append(pd.Categorical(event_col, dtype=EVENT_CATEGORIES))
            # Whole milliseconds: julianday() arithmetic leaves sub-microsecond noise on SQLite.
            seconds = np.fromiter(time_col, dtype=np.float64, count=len(rows))
            stamps.append(np.round(seconds * 1000.0).astype(np.int64))
    finally:
        cursor.close()
    if not users:
        return pd.DataFrame(
            {
                "user": np.empty(0, np.int64),
                "item": np.empty(0, np.int64),
                "event": pd.Categorical([], dtype=EVENT_CATEGORIES),
                "timestamp": pd.to_datetime(pd.Series([], dtype="datetime64[ns]"), utc=True),
            }
        )
    return pd.DataFrame(
        {
            "user": np.concatenate(users),
            "item": np.concatenate(items),
            "event": pd.Categorical(pd.api.types.union_categoricals(events)),
            "timestamp": pd.to_datetime(np.concatenate(stamps), unit="ms", utc=True),
        }
    )


def order_lines(since: datetime | None = None, customers_only: bool = False) -> pd.DataFrame:
    """Purchases as order lines: columns ``basket``, ``item``, ``timestamp``, ``user`` (a
    signed-in user's pk, else the visitor's code), ``value`` and ``quantity``.

    A basket is an order: the lines ``order_paid`` records share the id ``order:<pk>`` (and
    the demo import's ``import:<invoice>``) in their ``client_event_id``; a purchase sent
    without one (an API client's) is grouped with its shopper's other purchases of the same
    instant. ``customers_only``: signed-in users' purchases only. Only server-verified
    purchases (:mod:`recommendations.verified`): a client cannot invent baskets.
    """
    qs = Interaction.objects.order_by().filter(verified_purchases_q())
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if customers_only:
        qs = qs.filter(user__isnull=False)
    rows = qs.annotate(epoch=EpochSeconds("created_at")).values_list(
        "user_id", "visitor_id", "item_id", "client_event_id", "epoch", "value", "quantity"
    )
    baskets, users, items, stamps, values, quantities = [], [], [], [], [], []
    codes: dict[str, int] = {}
    for user_id, visitor_id, item_id, event_id, epoch, value, quantity in rows.iterator(
        chunk_size=CHUNK
    ):
        prefix, _, _ = (event_id or "").rpartition(":")
        if prefix.startswith(("order:", "import:")):
            baskets.append(prefix)
        else:
            baskets.append(f"{user_id or visitor_id}@{round(epoch * 1000)}")
        if user_id is None:
            user_id = codes.get(visitor_id)
            if user_id is None:
                user_id = codes[visitor_id] = visitor_code(visitor_id)
        users.append(user_id)
        items.append(item_id)
        stamps.append(round(epoch * 1000))
        values.append(np.nan if value is None else float(value))
        quantities.append(quantity)
    return pd.DataFrame(
        {
            "basket": pd.Series(baskets, dtype=object),
            "item": np.asarray(items, dtype=np.int64),
            "timestamp": pd.to_datetime(np.asarray(stamps, dtype=np.int64), unit="ms", utc=True),
            "user": np.asarray(users, dtype=np.int64),
            "value": np.asarray(values, dtype=np.float64),
            "quantity": np.asarray(quantities, dtype=np.int64),
        }
    )
