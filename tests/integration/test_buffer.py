"""The optional Redis buffer: events wait in Redis, a flush writes them once, nothing is lost."""

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest
import redis
from django.test import override_settings

from recommendations.learning.tasks import flush_buffer
from recommendations.models import Interaction
from recommendations.tracking import buffer, recording, storage
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def buffered():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {REDIS_URL} (.ci/run starts one)")
    key = f"test:events:{uuid.uuid4().hex}"
    cfg = {"BUFFER": {"ENABLED": True, "REDIS_URL": REDIS_URL, "KEY": key}}
    with override_settings(RECOMMENDATIONS=cfg):
        yield key
    client = redis.Redis.from_url(REDIS_URL)
    for k in client.scan_iter(match=f"{key}*"):
        client.delete(k)


def test_events_wait_in_redis_until_flushed(buffered):
    item = factories.product()
    for n in range(5):
        recording.record("view", item, visitor_id=f"v{n}")
    recording.record("purchase", item, visitor_id="v0", value="9.99", client_event_id="order-1")
    assert not Interaction.objects.exists()
    assert buffer.pending_count() == 6
    assert flush_buffer.delay().get() == 6
    assert Interaction.objects.count() == 6
    # A purchase from server code is stored in the verified "server:" namespace.
    assert str(Interaction.objects.get(client_event_id="server:order-1").value) == "9.99"
    assert buffer.pending_count() == 0 and flush_buffer.delay().get() == 0


def test_a_flush_that_died_halfway_is_finished_once(buffered):
    item = factories.product()
    for n in range(3):
        recording.record("view", item, visitor_id=f"v{n}")
    client = redis.Redis.from_url(REDIS_URL)
    # A flush renamed the list and wrote some rows, then its worker died before deleting it.
    client.rename(buffered, f"{buffered}:processing:crashed")
    raw = client.lrange(f"{buffered}:processing:crashed", 0, 0)
    storage.insert_rows([buffer._decode(raw[0])])
    recording.record("view", item, visitor_id="later")
    assert buffer.flush() == 4  # rows read: the 3 left behind (one already stored) + 1 new
    assert Interaction.objects.count() == 4  # each event exactly once
    assert not list(client.scan_iter(match=f"{buffered}*"))


def test_redis_down_means_direct_writes(buffered):
    item = factories.product()
    with override_settings(
        RECOMMENDATIONS={
            "BUFFER": {"ENABLED": True, "REDIS_URL": "redis://127.0.0.1:1/0", "KEY": buffered}
        }
    ):
        assert recording.record("view", item, visitor_id="v1") is True
    assert Interaction.objects.filter(visitor_id="v1").count() == 1


@pytest.fixture
def stoppable_redis():
    """A redis-server of this test's own, so it can be frozen (SIGSTOP) like a stalled host."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server (.ci/run installs it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
                break
            except redis.RedisError:
                time.sleep(0.05)
        yield proc, url
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(10)


def test_a_push_that_times_out_but_lands_later_is_stored_once(stoppable_redis):
    """Redis stalls past the client's timeout: the event is inserted directly, then Redis
    wakes and runs the push it had received; the flush must not store it a second time."""
    proc, url = stoppable_redis
    item = factories.product()
    cfg = {"BUFFER": {"ENABLED": True, "REDIS_URL": url, "KEY": "test:stalled"}}
    with override_settings(RECOMMENDATIONS=cfg):
        buffer.pending_count()  # connect while Redis is up
        proc.send_signal(signal.SIGSTOP)
        try:
            assert recording.record("view", item, visitor_id="stalled") is True
        finally:
            proc.send_signal(signal.SIGCONT)
        assert Interaction.objects.filter(visitor_id="stalled").count() == 1  # direct write
        for _ in range(50):  # the push Redis had received before it froze now runs
            if buffer.pending_count():
                break
            time.sleep(0.05)
        assert buffer.pending_count() == 1, "the stalled push never landed: no race exercised"
        buffer.flush()
    assert Interaction.objects.filter(visitor_id="stalled").count() == 1
