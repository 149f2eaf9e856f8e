"""Django's database sessions, refusing malformed keys before any query.

A session cookie can carry an escaped NUL (``sessionid="abc\\000def"``), which Django's cookie
parser turns into a real NUL character. The stock backend looks it up and PostgreSQL
refuses NUL in text: a 500 on every page. Keys Django makes are 32 lowercase letters and
digits, so anything else is treated as no session at all.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        return bool(super()._validate_session_key(key) and key.isascii() and key.isalnum())
