"""``python manage.py recommendations_evaluate [--protocol temporal|random] [--models ...]``

The offline evaluation of ``python -m recommendations.ml.evaluate``, on the shop's own log
and with its settings (event weights, half-life, held-out shoppers): the temporal protocol
by default, one JSON line per model and task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from recommendations.conf import app_settings
from recommendations.learning.dataset import interaction_matrix, training_log
from recommendations.learning.training import NotEnoughData, temporal_split
from recommendations.ml.evaluate import (
    DEFAULT_TEMPORAL_MODELS,
    TEMPORAL_BASELINES,
    evaluate_models,
    evaluate_temporal,
    format_table,
)
from recommendations.ml.models import REGISTRY


class Command(BaseCommand):
    help = "Compare the models on the shop's interaction log (temporal protocol by default)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--protocol", choices=("temporal", "random"), default="temporal")
        parser.add_argument(
            "--models",
            default=None,
            help=f"temporal default {','.join(DEFAULT_TEMPORAL_MODELS)}; random default "
            "vae,ease,itemknn,pop",
        )
        parser.add_argument("--seed", type=int, default=0, help="random protocol: the split.")
        parser.add_argument("--output", type=Path, default=None, help="Write the JSON here.")

    def handle(self, *args: Any, **options: Any) -> None:
        temporal = options["protocol"] == "temporal"
        default = ",".join(DEFAULT_TEMPORAL_MODELS) if temporal else "vae,ease,itemknn,pop"
        names = [m.strip() for m in (options["models"] or default).split(",") if m.strip()]
        known = {*REGISTRY, *TEMPORAL_BASELINES, "served"} if temporal else set(REGISTRY)
        unknown = sorted(set(names) - known)
        if unknown or not names:
            raise CommandError(f"Unknown models {unknown}; choose from {', '.join(sorted(known))}.")
        frame = training_log()
        if frame.empty:
            raise CommandError("The interaction log is empty.")
        if temporal:
            self._temporal(frame, names, options["output"])
        else:
            self._random(frame, names, options)

    def _temporal(self, frame: Any, names: list[str], output: Path | None) -> None:
        try:
            split = temporal_split(frame)
        except NotEnoughData as exc:
            raise CommandError(str(exc)) from exc
        algorithm = app_settings.TRAINING["ALGORITHM"]
        rows = evaluate_temporal(
            split,
            names,
            model_params={algorithm: app_settings.TRAINING["HYPERPARAMETERS"]},
            served_algorithm=algorithm,
            served_policy=app_settings.EXCLUDE_BOUGHT["for_you"],
        )
        common = {"cut": str(split.cut), "window_days": split.window_days}
        for row in rows:
            self.stdout.write(json.dumps({**row, **common}, default=float))
        if output:
            output.write_text(
                json.dumps({"split": common, "results": rows}, indent=2, default=float)
            )
            self.stdout.write(f"Wrote {output}")

    def _random(self, frame: Any, names: list[str], options: dict[str, Any]) -> None:
        cfg = app_settings.TRAINING
        try:
            result = evaluate_models(
                interaction_matrix(frame),
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
