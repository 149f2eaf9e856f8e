"""Eight concurrent shoppers on a live server over PostgreSQL: posting event batches (with
retries), adding to cart and checking out. Every accepted event is stored exactly once,
no request deadlocks or fails, and stock, orders and purchase events reconcile."""

import re
import threading
import time
import uuid

import pytest
import requests
from django.db import connection

from recommendations.models import Interaction
from shop.models import Order, OrderLine, Product
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
WRITERS = 8
SECONDS = 8
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (set DATABASE_URL; .ci/run does)")


def _csrf(session: requests.Session, url: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', session.get(url).text).group(1)


def test_concurrent_events_and_checkouts_reconcile(postgres, live_server):
    products = [factories.product(stock=1000) for _ in range(6)]
    users = [factories.user(f"shopper{n}", password="a-long-pass-phrase-9") for n in range(WRITERS)]
    accepted: set[str] = set()
    checkouts: list[int] = []
    sold: dict[int, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def shopper(n: int) -> None:
        session = requests.Session()
        session.headers["User-Agent"] = UA
        base = live_server.url
        token = _csrf(session, f"{base}/accounts/login/")
        session.post(
            f"{base}/accounts/login/",
            data={
                "username": users[n].username,
                "password": "a-long-pass-phrase-9",
                "csrfmiddlewaretoken": token,
            },
        )
        visitor = f"device-{n}-{uuid.uuid4().hex[:8]}"
        previous = None
        while time.monotonic() < deadline:
            batch = [
                {
                    "event": "view",
                    "item": products[i % 6].pk,
                    "client_event_id": f"{visitor}-{uuid.uuid4().hex}",
                }
                for i in range(5)
            ]
            for attempt in [batch] + ([previous] if previous else []):  # a retry of the last one
                r = session.post(
                    f"{base}/api/recommendations/events/",
                    json={"visitor_id": factories.visitor_token(visitor), "events": attempt},
                    headers={"X-CSRFToken": session.cookies.get("csrftoken", "")},
                )
                if r.status_code not in (200, 201):
                    failures.append(f"events {r.status_code}: {r.text[:200]}")
                    return
                with lock:
                    # stored in the signed-in shopper's namespace (tracking.shopper_event_id)
                    accepted.update(f"u{users[n].pk}/{e['client_event_id']}" for e in attempt)
            previous = batch
            item = products[n % 6]
            token = session.cookies.get("csrftoken", "")
            session.post(
                f"{base}/cart/add/{item.pk}/", data={"quantity": 2, "csrfmiddlewaretoken": token}
            )
            r = session.post(
                f"{base}/checkout/", data={"csrfmiddlewaretoken": token}, allow_redirects=False
            )
            if r.status_code != 302 or "/orders/" not in r.headers.get("Location", ""):
                failures.append(f"checkout {r.status_code} {r.headers.get('Location')}")
                return
            with lock:
                checkouts.append(n)
                sold[item.pk] = sold.get(item.pk, 0) + 2

    threads = [threading.Thread(target=shopper, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    assert not any(t.is_alive() for t in threads), "a shopper hung (deadlock?)"
    assert not failures, failures[:5]
    assert len(checkouts) >= WRITERS, "too little happened to prove anything"

    stored = list(
        Interaction.objects.filter(client_event_id__in=accepted).values_list(
            "client_event_id", flat=True
        )
    )
    assert len(stored) == len(set(stored)) == len(accepted)  # each exactly once
    assert Order.objects.count() == len(checkouts)
    assert Interaction.objects.filter(event="purchase").count() == OrderLine.objects.count()
    for product in Product.objects.filter(pk__in=sold):
        assert product.stock == 1000 - sold[product.pk]
