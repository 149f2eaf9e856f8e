"""``python manage.py recommendations_export --user ID [--output FILE]``"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from recommendations.tracking.privacy import export


class Command(BaseCommand):
    help = "Write everything the recommendations app stores about a shopper as JSON."

    def add_arguments(self, parser: Any) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", type=int)
        who.add_argument("--visitor")
        parser.add_argument("--output", type=Path, help="File to write (default: stdout).")

    def handle(
        self, *args: Any, user: int | None, visitor: str | None, output: Path | None, **options: Any
    ) -> None:
        if user is not None and not get_user_model()._default_manager.filter(pk=user).exists():
            raise CommandError(f"No user with id {user}.")
        text = json.dumps(export(user_id=user, visitor_id=visitor), indent=2, default=str)
        if output:
            output.write_text(text + "\n")
            self.stdout.write(self.style.SUCCESS(f"Wrote {output}"))
        else:
            self.stdout.write(text)
