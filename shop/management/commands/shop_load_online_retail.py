"""``python manage.py shop_load_online_retail [--limit N] [--path FILE]``"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from shop import loaders
from shop.models import Order


class Command(BaseCommand):
    help = (
        "Import the UCI Online Retail dataset: products, customers (unusable passwords), "
        "paid orders and their purchase events. Idempotent; reports rejected rows."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--path",
            type=Path,
            default=loaders.DEFAULT_PATH,
            help="CSV or CSV.GZ file (default: the committed dataset).",
        )
        parser.add_argument("--limit", type=int, default=None, help="Read only the first N rows.")
        parser.add_argument(
            "--chunk-size", type=int, default=1000, help="Orders per transaction (default 1000)."
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when the shop already has orders."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Order.objects.exists():
            self.stdout.write("The shop already has orders; nothing to import.")
            return
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"No such file: {path}")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be a positive number of rows.")
        report = loaders.ImportReport()
        self.stdout.write(f"Reading {path} ...")
        try:
            frame = loaders.read_rows(path, options["limit"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        rows = loaders.validate(frame, report)
        products = loaders.ensure_products(rows, report)
        customers = loaders.ensure_customers(rows, report)
        invoices = rows["invoice"].nunique()
        with tqdm(
            total=invoices,
            unit="order",
            desc="Orders",
            disable=options["no_progress"],
            file=self.stderr._out,
        ) as bar:
            loaders.import_orders(
                rows,
                products,
                customers,
                report,
                chunk_size=options["chunk_size"],
                progress=bar.update,
            )
        self._print_report(report)

    def _print_report(self, report: loaders.ImportReport) -> None:
        w = self.stdout.write
        w(
            self.style.SUCCESS(
                f"Read {report.rows_read:,} rows, accepted {report.rows_accepted:,}. Created "
                f"{report.products_created:,} products, {report.customers_created:,} customers, "
                f"{report.orders_created:,} orders ({report.lines_created:,} lines, "
                f"{report.events_created:,} purchase events); {report.orders_skipped:,} orders "
                "were already imported."
            )
        )
        total = sum(report.rejected.values())
        if not total:
            w("Rejected rows: none.")
            return
        w(f"Rejected {total:,} rows:")
        for reason, count in report.rejected.most_common():
            lines = ", ".join(map(str, report.examples.get(reason, [])))
            w(f"  {count:>8,}  {reason}  (e.g. file lines {lines})")
