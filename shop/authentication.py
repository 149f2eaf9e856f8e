"""HTTP Basic authentication for the shop's API clients, safe with every database.

DRF's ``BasicAuthentication`` hands the decoded user id straight to the auth backend. A user
id with a NUL character then reaches the user lookup, and PostgreSQL refuses NUL in text
("cannot contain NUL (0x00) bytes"): a 500 instead of a refusal. Django's own login form
rejects NUL with a validator; this does the same for the header.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import BasicScheme
from rest_framework import authentication, exceptions


class BasicAuthentication(authentication.BasicAuthentication):
    def authenticate_credentials(
        self, userid: str, password: str, request: Any = None
    ) -> tuple[Any, None]:
        if "\x00" in userid or "\x00" in password:
            raise exceptions.AuthenticationFailed("Invalid username/password.")
        return super().authenticate_credentials(userid, password, request)


class BasicAuthenticationScheme(BasicScheme):
    """The same ``basicAuth`` security scheme in the OpenAPI schema as DRF's class gets."""

    target_class = BasicAuthentication

