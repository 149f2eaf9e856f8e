"""``python manage.py recommendations_forget --user ID | --visitor ID``"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from recommendations.tracking.privacy import forget


class Command(BaseCommand):
    help = "Erase a shopper's events, impressions and cached recommendations (GDPR erasure)."

    def add_arguments(self, parser: Any) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", type=int, help="User id.")
        who.add_argument("--visitor", help="Anonymous visitor id.")

    def handle(self, *args: Any, user: int | None, visitor: str | None, **options: Any) -> None:
        if user is not None and not get_user_model()._default_manager.filter(pk=user).exists():
            raise CommandError(f"No user with id {user}.")
        removed = forget(user_id=user, visitor_id=visitor)
        who = f"user {user}" if user is not None else f"visitor {visitor}"
        self.stdout.write(self.style.SUCCESS(f"Forgot {who}:"))
        for what, count in sorted(removed.items()):
            self.stdout.write(f"  {count:>8,}  {what}")
