"""``python manage.py recommendations_evaluate [--models vae,ease,itemknn,pop] [--seed S]``

The offline evaluation of ``python -m recommendations.ml.evaluate``, on the shop's own log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from recommendations.conf import app_settings
from recommendations.learning.dataset import interaction_matrix, training_log
from recommendations.ml.evaluate import evaluate_models, format_table
from recommendations.ml.models import REGISTRY


class Command(BaseCommand):
    help = "Compare the models on the shop's interaction log (strong generalisation split)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--models", default="vae,ease,itemknn,pop")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--output", type=Path, default=None, help="Write the JSON here.")

    def handle(self, *args: Any, **options: Any) -> None:
        names = [m.strip() for m in options["models"].split(",") if m.strip()]
        unknown = sorted(set(names) - set(REGISTRY))
        if unknown or not names:
            raise CommandError(f"Unknown models {unknown}; choose from {', '.join(REGISTRY)}.")
        frame = training_log()
        if frame.empty:
            raise CommandError("The interaction log is empty.")
        matrix = interaction_matrix(frame)
        cfg = app_settings.TRAINING
        try:
            result = evaluate_models(
                matrix,
                models=names,
                seed=options["seed"],
                split_kwargs={
                    "fraction": cfg["HOLDOUT_FRACTION"],
                    "min_items": cfg["MIN_ITEMS_PER_USER"],
                },
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(format_table(result))
        if options["output"]:
            for entry in result["models"].values():
                entry.pop("history", None)
            options["output"].write_text(json.dumps(result, indent=2, default=float))
            self.stdout.write(f"Wrote {options['output']}")
