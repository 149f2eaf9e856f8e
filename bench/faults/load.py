"""The busy shop's event stream for ``bench/faults/run.py`` (run by it, not by hand).

    load.py TAG RATE SECONDS OUT_JSON

Several threads (the web server's workers) call ``tracking.record()`` at RATE events/s in
all, each call framed as a request is (``close_old_connections`` before and after, as
Django's ``request_started`` / ``request_finished`` do). Every event carries its own tag in
``source`` (``faults:TAG:SEQ``) so the bench can count stored copies; even-numbered events
also carry that tag as ``client_event_id`` (what an API client sends), odd ones none (a page
view recorded by the shop's own receivers). OUT_JSON gets which calls returned (``ok``) and
which raised (``refused``: the page would have shown the shopper an error).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from datetime import timedelta

THREADS = 4


def main() -> int:
    tag, rate, seconds, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    import django

    django.setup()
    from django.db import close_old_connections

    from recommendations import tracking
    from recommendations.models import Interaction
    from shop.models import Product

    items = list(Product.objects.values_list("pk", flat=True)[:2000])
    last = Interaction.objects.order_by("-created_at").values_list("created_at", flat=True)[0]
    close_old_connections()
    ok: list[int] = []
    refused: dict[int, str] = {}
    lock = threading.Lock()
    counter = iter(range(10**9))
    start = time.monotonic()
    print("START", flush=True)  # the bench times its fault from here
    per_thread = rate / THREADS
    stop = threading.Event()  # SIGINT / SIGTERM: stop sending, write the tally
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())

    def worker(k: int) -> None:
        rng = random.Random(k)
        n = 0
        while True:
            due = start + n / per_thread
            now = time.monotonic()
            if due - start >= seconds or stop.is_set():
                break
            if due > now:
                time.sleep(due - now)
            n += 1
            with lock:
                seq = next(counter)
            tag_seq = f"faults:{tag}:{seq}"
            close_old_connections()
            try:
                tracking.record(
                    "view" if rng.random() < 0.85 else "add_to_cart",
                    rng.choice(items),
                    visitor_id=f"fv{rng.randrange(3000)}",
                    source=tag_seq,
                    client_event_id=tag_seq if seq % 2 == 0 else None,
                    # Inside the demo log's time range: the temporal split cuts at its end.
                    created_at=last - timedelta(seconds=rng.uniform(0, 20 * 86400)),
                )
                with lock:
                    ok.append(seq)
            except Exception as exc:  # the page would have failed: the shopper saw it
                with lock:
                    refused[seq] = type(exc).__name__
            finally:
                close_old_connections()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
    elapsed = time.monotonic() - start
    with open(out, "w") as fh:
        json.dump(
            {
                "tag": tag,
                "sent": len(ok) + len(refused),
                "ok": ok,
                "refused": refused,
                "seconds": elapsed,
                "pid": os.getpid(),
            },
            fh,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
