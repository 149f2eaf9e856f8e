from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from recommendations.models import Interaction
from shop import loaders
from shop.models import Order, OrderLine, Product

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "online_retail_sample.csv"


def _load(*args: str) -> str:
    out = StringIO()
    call_command(
        "shop_load_online_retail", "--path", str(SAMPLE), "--no-progress", *args, stdout=out
    )
    return out.getvalue()


def test_import_reports_rejected_rows_and_imports_the_rest():
    output = _load()
    assert "malformed row" in output
    assert "file lines 1202, 1203, 1204" in output  # the three broken rows, by line number
    assert "cancellation" in output and "missing customer" in output
    valid_order = Order.objects.get(number="599004")
    assert valid_order.lines.get().quantity == 2
    assert Order.objects.filter(number__in=["599001", "599002", "599003"]).count() == 0
    assert Interaction.objects.filter(event="purchase").count() == OrderLine.objects.count()
    purchase = Interaction.objects.get(client_event_id="import:599004:0")
    assert purchase.user_id == valid_order.user_id
    assert purchase.created_at == valid_order.created_at
    assert Product.objects.exclude(category=None).count() == Product.objects.count()
    assert not Product.objects.filter(sku__in=["POST", "DOT"]).exists()


def test_a_second_run_adds_nothing():
    _load()
    counts = (
        Product.objects.count(),
        Order.objects.count(),
        OrderLine.objects.count(),
        Interaction.objects.count(),
    )
    output = _load()
    assert (
        Product.objects.count(),
        Order.objects.count(),
        OrderLine.objects.count(),
        Interaction.objects.count(),
    ) == counts
    assert "Created 0 products, 0 customers, 0 orders" in output


def test_limit_reads_only_the_first_rows():
    _load("--limit", "100")
    assert 0 < Order.objects.count() < 20
    assert Order.objects.filter(number="599004").count() == 0


def test_customers_cannot_log_in():
    _load("--limit", "50")
    order = Order.objects.first()
    assert not order.user.has_usable_password()


def test_a_failure_mid_import_leaves_no_half_imported_order(monkeypatch):
    real_insert = loaders.insert_plain_rows
    calls = {"n": 0}

    def failing_insert(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(loaders, "insert_plain_rows", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        _load("--chunk-size", "20")
    imported = Order.objects.count()
    assert imported == 20  # the first chunk only
    assert not Order.objects.filter(lines=None).exists()
    assert Interaction.objects.count() == OrderLine.objects.count()
    monkeypatch.setattr(loaders, "insert_plain_rows", real_insert)
    _load("--chunk-size", "20")  # a re-run resumes where it stopped
    assert Order.objects.count() > imported
    assert not Order.objects.filter(lines=None).exists()


def test_missing_file_and_bad_limit_are_clear_errors(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("shop_load_online_retail", "--path", str(tmp_path / "nope.csv"))
    with pytest.raises(CommandError, match="positive"):
        call_command("shop_load_online_retail", "--path", str(SAMPLE), "--limit", "0")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match="missing columns"):
        call_command("shop_load_online_retail", "--path", str(wrong))
