"""SQL the ORM would build too slowly on hot paths, shared by tracking, learning and serving.

- :func:`bulk_insert`: ``bulk_create`` compiles every value of every row; for hundreds of
  thousands of rows that costs several times the database's own work. It takes ready values
  (the caller adapts datetimes with ``connection.ops``) and uses the driver's ``executemany``.
- :func:`compiled_rows`: the queries every request makes are compiled once and rerun with
  new values (most of a small query's cost is the ORM building it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, connections
from django.db.models import Model
from django.db.models.constants import OnConflict

BATCH = 5000


def bulk_insert(
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    ignore_conflicts: bool = False,
    conflict_fields: Sequence[str] = (),
) -> None:
    """``INSERT`` ``rows`` (tuples of ``columns``); with ``ignore_conflicts`` rows that
    violate a unique constraint are skipped (``ON CONFLICT DO NOTHING`` / ``INSERT OR IGNORE``).
    """
    if not rows:
        return
    ops = connection.ops
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    suffix = ""
    if on_conflict:
        fields = [model._meta.get_field(name) for name in conflict_fields]
        suffix = ops.on_conflict_suffix_sql(fields, on_conflict, None, None) or ""
    sql = "{} {} ({}) VALUES ({}) {}".format(
        ops.insert_statement(on_conflict=on_conflict),
        ops.quote_name(model._meta.db_table),
        ", ".join(ops.quote_name(c) for c in columns),
        ", ".join(["%s"] * len(columns)),
        suffix,
    )
    with connection.cursor() as cursor:
        if len(rows) == 1:
            cursor.execute(sql, rows[0])
            return
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])


_statements: dict[tuple, tuple | None] = {}


def _sentinel(kind: type, n: int) -> Any:
    """The ``n``-th stand-in value of a type: what no row holds."""
    return -7_340_000_000_001 - n if kind is int else f"\x00recommendations-sentinel-{n}\x00"


def compiled_rows(key: tuple, build: Callable[..., Any], *values: Any) -> list[tuple] | None:
    """The rows of ``build(*values)``, from a statement compiled once per ``key``.

    For the queries every request makes (their shape never changes, only the values do):
    the queryset is built with stand-ins for ``values`` and compiled once; later calls run
    that SQL with the values in the stand-ins' places, skipping the ORM's query building
    (most of a small query's cost). A value is an int, a str, or a list of ints (an ``IN``
    list: its length belongs in ``key``). Only for values_list queries of ints and strings
    (no converters). None where a stand-in is not found exactly once: use the ORM then.
    """
    flat: list[Any] = []
    for value in values:
        if type(value) is list:
            if not all(type(v) is int for v in value):
                return None
            flat += value
        elif type(value) in (int, str):
            flat.append(value)
        else:
            return None
    statement = _statements.get(key, False)
    if statement is False:
        stand_ins = [_sentinel(type(v), n) for n, v in enumerate(flat)]
        pending = iter(stand_ins)
        args = [
            [next(pending) for _ in value] if type(value) is list else next(pending)
            for value in values
        ]
        qs = build(*args)
        sql, params = qs.query.get_compiler(qs.db).as_sql()
        places = []
        for stand_in in stand_ins:
            found = [i for i, p in enumerate(params) if type(p) is type(stand_in) and p == stand_in]
            places.append(found[0] if len(found) == 1 else None)
        ok = None not in places
        statement = _statements[key] = (qs.db, sql, list(params), places) if ok else None
    if statement is None:
        return None
    db, sql, params, places = statement
    params = list(params)
    for place, value in zip(places, flat, strict=True):
        params[place] = value
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]
