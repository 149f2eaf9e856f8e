"""Bulk writes that skip Django's per-value SQL compilation.

``bulk_create`` compiles every value of every row; for hundreds of thousands of rows that
costs several times the database's own work. These helpers take ready values (the caller
adapts datetimes with ``connection.ops``) and use the driver's ``executemany``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
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
