"""``python manage.py recommendations_train [--async] [--if-none] [--force-activate]``

Without ``--async`` every step runs in this process, broker or not: training, then the
related items, then activation (the operator waits for it anyway). Each step's outcome is
reported as it is stored: a version that trained is never reported as failed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from recommendations.conf import app_settings
from recommendations.learning.tasks import (
    NotQueued,
    note_unscored,
    queue_training,
    runs_in_process,
    score_similarity,
    train,
)
from recommendations.ml.models import REGISTRY
from recommendations.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Train a new model version from the interaction log, test it against the baselines, "
        "score its related items and activate it if it passes the gate."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--async",
            action="store_true",
            dest="run_async",
            help="Queue the training for a worker and return at once (with no broker "
            "configured, it runs here).",
        )
        parser.add_argument("--algorithm", choices=sorted(REGISTRY), default=None)
        parser.add_argument(
            "--force-activate",
            action="store_true",
            help="Activate the new version even if it fails the gate.",
        )
        parser.add_argument(
            "--no-activate",
            action="store_true",
            help="Train and score, but leave the active version as it is.",
        )
        parser.add_argument(
            "--if-none",
            action="store_true",
            help="Do nothing when an active version exists (for set-up scripts).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_none"] and ModelVersion.objects.filter(is_active=True).exists():
            self.stdout.write("An active model version exists; nothing to train.")
            return
        if options["run_async"] and not runs_in_process(train.app):
            try:
                version = queue_training(
                    algorithm=options["algorithm"],
                    force_activate=options["force_activate"],
                    activate=not options["no_activate"],
                )
            except NotQueued as exc:
                failed = ModelVersion.objects.order_by("-pk").first()
                name = f"v{failed.pk}" if failed is not None else "the new version"
                raise CommandError(
                    f"Training was not queued: {exc}. {name} is marked failed; nothing was "
                    "trained. Start the broker, or run this command without --async to train "
                    "in this process."
                ) from exc
            self.stdout.write(self.style.SUCCESS(f"Queued training of v{version.pk}."))
            return
        if options["run_async"]:
            self.stdout.write("No Celery broker is configured: training runs in this process.")
        version = ModelVersion.objects.create(
            algorithm=options["algorithm"] or app_settings.TRAINING["ALGORITHM"],
            force_activate=options["force_activate"],
            activate_when_ready=not options["no_activate"],
        )
        self._show_progress()
        self.stdout.write(f"Training v{version.pk} ...")
        try:
            train.apply(args=(version.pk,), kwargs={"score": False}, throw=True)
        except Exception as exc:
            version.refresh_from_db()
            if version.status == ModelVersion.Status.FAILED:
                raise CommandError(f"Training v{version.pk} failed: {exc}") from exc
            if version.status != ModelVersion.Status.SUCCEEDED:
                raise CommandError(
                    f"Training v{version.pk} did not run ({type(exc).__name__}: {exc}); "
                    f"it is stored as {version.status}."
                ) from exc
            self.stderr.write(
                f"v{version.pk} trained and is stored as succeeded; then "
                f"{type(exc).__name__}: {exc}"
            )
        version.refresh_from_db()
        if version.status != ModelVersion.Status.SUCCEEDED:
            raise CommandError(f"Training v{version.pk} did not run: it is {version.status}.")
        self.stdout.write(version.gate_report)
        self.stdout.write(f"Scoring the related items of v{version.pk} ...")
        try:
            score_similarity.apply(args=(version.pk,), throw=True)
        except Exception as exc:
            note = note_unscored(
                version.pk, f"scoring its related items failed ({type(exc).__name__}: {exc})"
            )
            raise CommandError(f"v{version.pk} succeeded. {note}") from exc
        version.refresh_from_db()
        state = "active" if version.is_active else "not activated"
        self.stdout.write(
            self.style.SUCCESS(
                f"v{version.pk} {version.status} on {version.device} in "
                f"{version.duration_seconds or 0:.0f}s: {state}."
            )
        )

    def _show_progress(self) -> None:
        """Route the pipeline's INFO messages to this command's output as they happen."""
        logger = logging.getLogger("recommendations")
        if not any(getattr(h, "_command_progress", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("  %(message)s"))
            handler._command_progress = True
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
