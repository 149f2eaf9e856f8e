"""``python manage.py recommendations_refresh``"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from recommendations.learning.refresh import refresh


class Command(BaseCommand):
    help = (
        "Between trainings: update the active version's bought-together lists, the similar "
        "lists of new items and the popular and trending caches from the events since the "
        "last run, without retraining (the beat runs it every 15 minutes)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, json: bool = False, **options: Any) -> None:
        report = refresh(progress=lambda m: self.stdout.write(f"  {m}"))
        if json:
            self.stdout.write(_dumps(report.as_dict()))
            return
        if report.skipped:
            self.stdout.write(self.style.WARNING(f"Skipped: {report.skipped}."))
            return
        where = f"v{report.version_id}" if report.version_id else "no active version"
        self.stdout.write(
            self.style.SUCCESS(
                f"Refreshed ({where}): {report.items_touched:,} items' bought-together lists, "
                f"{report.new_items:,} new items' similar lists; timings {report.seconds}."
            )
        )


def _dumps(value: dict) -> str:
    return json.dumps(value, default=str)
