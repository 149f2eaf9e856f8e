"""``python manage.py recommendations_similarity [--version ID]``"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from recommendations.learning.related import compute_related
from recommendations.models import ModelVersion


class Command(BaseCommand):
    help = "Recompute the related-item lists (similar, bought together) of a model version."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--model-version",
            type=int,
            default=None,
            dest="version",
            help="Version id (default: the active version).",
        )

    def handle(self, *args: Any, version: int | None, **options: Any) -> None:
        qs = ModelVersion.objects.filter(status=ModelVersion.Status.SUCCEEDED)
        target = qs.filter(pk=version).first() if version else qs.filter(is_active=True).first()
        if target is None:
            raise CommandError(
                f"No succeeded version {version}." if version else "No active version; train first."
            )
        report = compute_related(target, progress=lambda m: self.stdout.write(f"  {m}"))
        self.stdout.write(
            self.style.SUCCESS(
                f"v{target.pk}: {report.similar:,} similar, "
                f"{report.bought_together:,} bought-together pairs; "
                f"{report.content_based_items:,} new items matched by content."
            )
        )
