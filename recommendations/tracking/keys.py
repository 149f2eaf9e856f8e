"""What a primary key sent by a client may be, checked before any query sees it.

Every key here is a 64-bit signed integer column. A larger number overflows the database
driver (SQLite raises ``OverflowError``), and ``"²".isdigit()`` is True while ``int("²")``
fails: a key from a form, a query string or a JSON body is checked here first.
"""

from __future__ import annotations

#: The largest primary key a database stores (64-bit signed).
MAX_PK = 2**63 - 1


def is_pk_text(text: str) -> bool:
    """ASCII digits naming a key the database can store."""
    return text.isascii() and text.isdigit() and int(text) <= MAX_PK
