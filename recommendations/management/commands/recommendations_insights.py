"""``python manage.py recommendations_insights [--score] [--output FILE] [--min-risk 0.5]``

Customers at risk, for campaign tools: the latest insights as CSV, riskiest first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from recommendations.learning.insights import NotEnoughCustomers, score_customers, write_csv
from recommendations.models import CustomerInsight


class Command(BaseCommand):
    help = "Write every customer's churn risk and expected spend as CSV (riskiest first)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--score", action="store_true", help="Score the customers first.")
        parser.add_argument("--output", type=Path, help="File to write (default: stdout).")
        parser.add_argument(
            "--min-risk", type=float, default=0.0, help="Only customers at least this at risk."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0.0 <= options["min_risk"] <= 1.0:
            raise CommandError("--min-risk is a probability, between 0 and 1.")
        if options["score"]:
            try:
                report = score_customers()
            except NotEnoughCustomers as exc:
                raise CommandError(str(exc)) from exc
            self.stderr.write(f"Scored {report.customers:,} customers ({report.model}).")
        elif not CustomerInsight.objects.exists():
            raise CommandError("No insights yet: run with --score (or wait for the nightly task).")
        rows = (
            CustomerInsight.objects.select_related("user")
            .filter(churn_risk__gte=options["min_risk"])
            .order_by("-churn_risk", "-expected_spend")
        )
        if options["output"]:
            with options["output"].open("w", newline="") as out:
                n = write_csv(rows.iterator(), out)
            self.stdout.write(self.style.SUCCESS(f"Wrote {n:,} customers to {options['output']}"))
        else:
            write_csv(rows.iterator(), self.stdout)
