#!/usr/bin/env python
"""Faults, measured: a busy shop on PostgreSQL + Redis + a Celery worker, and one fault at a time.

    .venv/bin/python bench/faults/run.py [--rate 300] [--seconds 24] [--only redis_kill ...]

Everything runs on throwaway services the script starts and removes itself: a PostgreSQL 15
cluster (``initdb`` in a temporary folder, port 5440, run as ``postgres`` when we are root),
a ``redis-server`` on port 6390 (broker db 0, event buffer db 1, cache db 2), a Celery worker
(both queues, ``--concurrency 2``) and Celery beat (whose 10 s schedule flushes the buffer),
and MEDIA_ROOT (the artifact storage) on a 512 MiB tmpfs mounted for the run. The shared
servers on 5432 / 6379 are never touched.

Setup: ``migrate``, the first ``--rows`` rows of online-retail through the shop's loader, a
superuser, and v1 trained (``--epochs`` VAE epochs) and activated. A load process
(``load.py``) records events through ``tracking.record()`` from 4 threads at ``--rate`` per
second, each event tagged in ``source`` so the stored copies can be counted. A probe in this
process asks ``GET /api/recommendations/items/<pk>/related/`` every 0.5 s (no cache) and
counts an answer as good when it is a non-empty list from the active version.

Scenarios (``--only`` takes their names):

- ``redis_kill``: buffer on, Redis without persistence killed (-9) mid-stream, restarted 5 s
  later; ``redis_kill_aof``: the same with ``--appendonly yes --appendfsync everysec``;
  ``redis_pause``: Redis stopped (SIGSTOP) for 3 s, longer than the buffer's 0.5 s timeout;
- ``pg_restart``: ``pg_ctl restart -m fast`` while events are written directly;
  ``pg_restart_buffered``: the same with the buffer on;
- ``worker_kill_train``: the worker's process group killed (-9) during training, restarted
  at once, and the operator clicks "train now"; ``worker_kill_similarity``: killed during
  ``score_similarity``, then "recompute similarities" and "activate" in the admin;
  ``worker_kill_train_redeliver``: killed during training with a Celery
  ``visibility_timeout`` of 30 s, and no operator;
- ``storage_full``: the tmpfs filled to within 16 KiB, a training queued, then space freed
  and "train now" again.

Per scenario: events sent, refused (the call raised: the page would have shown an error),
stored, lost (returned normally but not stored) and duplicated, split by events with and
without ``client_event_id``; seconds without a good carousel; when the new version went live;
and what the admin shows for the affected version. Writes ``bench/results/faults.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PORT = 5440
REDIS_PORT = 6390
DB = "faults"
BUFFER_KEY = "recommendations:events"
SCENARIOS = [
    "redis_kill",
    "redis_kill_aof",
    "redis_pause",
    "pg_restart",
    "pg_restart_buffered",
    "worker_kill_train",
    "worker_kill_similarity",
    "worker_kill_train_redeliver",
    "storage_full",
]


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


class Stack:
    """The throwaway services, and how to hurt them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="recommendations-faults-"))
        os.chmod(self.tmp, 0o755)
        self.root_user = os.geteuid() == 0
        self.pgdata = self.tmp / "pg"
        self.pgsock = self.tmp / "pgsock"
        self.media = self.tmp / "media"
        self.redis_dir = self.tmp / "redis"
        for d in (self.pgdata, self.pgsock, self.media, self.redis_dir):
            d.mkdir()
        self.tmpfs = False
        self.redis: subprocess.Popen | None = None
        self.redis_aof = False
        self.worker: subprocess.Popen | None = None
        self.worker_env: dict[str, str] = {}
        self.worker_starts = 0
        self.planned_kill = False
        self.unplanned_exits: list[dict] = []
        self.supervisor: threading.Thread | None = None
        self.stopping = threading.Event()
        self.beat: subprocess.Popen | None = None
        self.loads: list[subprocess.Popen] = []
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="faults_settings",
            PYTHONPATH=f"{ROOT}{os.pathsep}{HERE}",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{PG_PORT}/{DB}",
            REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/2",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
            CELERY_RESULT_BACKEND=f"redis://127.0.0.1:{REDIS_PORT}/0",
            FAULTS_BUFFER_URL=f"redis://127.0.0.1:{REDIS_PORT}/1",
            DJANGO_MEDIA_ROOT=str(self.media),
            DJANGO_DEBUG="0",
            FAULTS_LOCK_TTL=str(args.lock_ttl),
            FAULTS_EPOCHS=str(args.epochs),
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("FAULTS_BUFFER", None)
        self.env.pop("FAULTS_VISIBILITY_TIMEOUT", None)

    # --- PostgreSQL --------------------------------------------------------------------
    def _as_postgres(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        if self.root_user:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

    def start_pg(self) -> None:
        if self.root_user:
            shutil.chown(self.pgdata, "postgres", "postgres")
            shutil.chown(self.pgsock, "postgres", "postgres")
        self._as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.pgdata),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        self._pg_ctl("start")
        self._as_postgres(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", DB]
        )

    def _pg_ctl(self, action: str, *extra: str) -> None:
        opts = (
            f"-p {PG_PORT} -k {self.pgsock} -c listen_addresses=127.0.0.1 "
            "-c max_connections=100 -c shared_buffers=64MB"
        )
        self._as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-o",
                opts,
                "-l",
                str(self.pgsock / "pg.log"),
                "-w",
                *extra,
                action,
            ]
        )

    def restart_pg(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    # --- Redis -------------------------------------------------------------------------
    def start_redis(self, aof: bool | None = None) -> None:
        if aof is not None:
            self.redis_aof = aof
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.redis_aof
            else ["--appendonly", "no"]
        )
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(REDIS_PORT),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *persistence,
                "--dir",
                str(self.redis_dir),
                "--logfile",
                str(self.tmp / "redis.log"),
            ],
            start_new_session=True,
        )
        for _ in range(100):
            if self.redis_client(timeout=0.2).ping_ok():
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait()

    def stop_redis(self) -> None:
        if self.redis and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)

    def redis_client(self, db: int = 1, timeout: float = 2.0) -> RedisProbe:
        return RedisProbe(db, timeout)

    # --- Celery ------------------------------------------------------------------------
    def start_worker(self, **extra_env: str) -> None:
        """Start the worker under a supervisor (as systemd's ``Restart=always`` would): a
        worker that exits is started again a second later, and counted when we did not
        kill it ourselves."""
        self.worker_env = {"FAULTS_BUFFER": "1", **extra_env}
        self._spawn_worker()
        if self.supervisor is None:
            self.supervisor = threading.Thread(target=self._supervise, daemon=True)
            self.supervisor.start()

    def _spawn_worker(self) -> None:
        with open(self.tmp / "worker.log", "a") as fh:
            fh.write(f"\n===== worker started {datetime.now().isoformat()} {self.worker_env}\n")
        out = open(self.tmp / "worker.log", "a")  # noqa: SIM115 (the child keeps it)
        self.worker = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "shop",
                "worker",
                "-Q",
                "recommendations,recommendations.train",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--hostname",
                "faults@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env={**self.env, **self.worker_env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.worker_starts += 1

    def _supervise(self) -> None:
        while not self.stopping.is_set():
            worker = self.worker
            if worker is not None and worker.poll() is not None:
                if self.planned_kill:
                    self.planned_kill = False
                else:
                    self.unplanned_exits.append(
                        {
                            "at": datetime.now().isoformat(timespec="seconds"),
                            "returncode": worker.returncode,
                        }
                    )
                    log(f"the worker exited by itself (rc {worker.returncode}); restarting it")
                time.sleep(1)
                if not self.stopping.is_set():
                    self._spawn_worker()
            time.sleep(0.25)

    def kill_worker(self) -> None:
        """kill -9 on the worker's whole process group: the main process and its pool. The
        supervisor starts a new one about a second later; this returns once it has."""
        assert self.worker is not None
        starts = self.worker_starts
        self.planned_kill = True
        os.killpg(self.worker.pid, signal.SIGKILL)
        for _ in range(200):
            if self.worker_starts > starts:
                return
            time.sleep(0.05)

    def start_beat(self) -> None:
        out = open(self.tmp / "beat.log", "a")  # noqa: SIM115 (the child keeps it)
        self.beat = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "shop",
                "beat",
                "-s",
                str(self.tmp / "beat-schedule"),
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={**self.env, "FAULTS_BUFFER": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def worker_log(self) -> str:
        path = self.tmp / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- load --------------------------------------------------------------------------
    def start_load(self, tag: str, rate: float, seconds: float, buffered: bool):
        out = self.tmp / f"load-{tag}.json"
        env = {
            **self.env,
            "FAULTS_BUFFER": "1" if buffered else "0",
            "FAULTS_LOG_LEVEL": "CRITICAL",
        }
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "load.py"), tag, str(rate), str(seconds), str(out)],
            cwd=ROOT,
            env=env,
            stdout=open(self.tmp / f"load-{tag}.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.loads.append(proc)
        log_path = self.tmp / f"load-{tag}.log"
        for _ in range(1200):  # Django's start-up: the fault is timed from the first event
            if "START" in log_path.read_text() or proc.poll() is not None:
                break
            time.sleep(0.05)
        return proc, out

    # --- storage -----------------------------------------------------------------------
    def mount_tmpfs(self) -> None:
        if not self.root_user:
            return
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512m,mode=0777", "tmpfs", str(self.media)],
            capture_output=True,
            text=True,
        )
        self.tmpfs = r.returncode == 0
        if not self.tmpfs:
            log(f"could not mount a tmpfs ({r.stderr.strip()}): storage_full will be skipped")

    # --- the end -----------------------------------------------------------------------
    def teardown(self) -> None:
        self.stopping.set()
        if self.supervisor is not None:
            self.supervisor.join(5)
        for proc in [*self.loads, self.worker, self.beat]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait()
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self._as_postgres(
                    [
                        str(PG_BIN / "pg_ctl"),
                        "-D",
                        str(self.pgdata),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ]
                )
            except subprocess.CalledProcessError as exc:
                log(f"pg_ctl stop: {exc.stderr}")
        if self.tmpfs:
            subprocess.run(["umount", str(self.media)], check=False)
        if self.args.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class RedisProbe:
    def __init__(self, db: int, timeout: float) -> None:
        import redis

        self.client = redis.Redis(
            host="127.0.0.1",
            port=REDIS_PORT,
            db=db,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )

    def ping_ok(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def buffered(self) -> int | None:
        """Events waiting in the buffer (list + unfinished flushes); None when unreachable."""
        try:
            n = self.client.llen(BUFFER_KEY)
            for key in self.client.scan_iter(match=f"{BUFFER_KEY}:processing:*"):
                n += self.client.llen(key)
            return n
        except Exception:
            return None


class Probe(threading.Thread):
    """Asks for a carousel every 0.5 s, as a page would, and notes whether it was good."""

    def __init__(self, item_pk: int) -> None:
        super().__init__(daemon=True)
        self.item_pk = item_pk
        self.samples: list[tuple[float, bool, int | None, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import close_old_connections
        from django.test import Client

        from recommendations.learning.versions import active_version

        client = Client()
        while not self.stop.is_set():
            t = time.monotonic()
            good, version, note = False, None, ""
            close_old_connections()
            try:
                resp = client.get(f"/api/recommendations/items/{self.item_pk}/related/")
                active = active_version()
                if resp.status_code == 200:
                    body = resp.json()
                    version = body.get("version")
                    good = bool(body["results"]) and active is not None and version == active.pk
                    note = "ok" if good else f"version {version}, active {active and active.pk}"
                else:
                    note = f"HTTP {resp.status_code}"
            except Exception as exc:
                note = type(exc).__name__
            finally:
                close_old_connections()
            self.samples.append((t, good, version, note))
            self.stop.wait(max(0.0, 0.5 - (time.monotonic() - t)))

    def window(self, t0: float, t1: float) -> dict:
        """Seconds without a good carousel in [t0, t1], and the longest gap's end."""
        rows = [s for s in self.samples if t0 <= s[0] <= t1]
        if not rows:
            return {"samples": 0}
        bad = [s for s in rows if not s[1]]
        gap, longest, start = 0.0, 0.0, None
        last_bad_end = None
        for i, s in enumerate(rows):
            nxt = rows[i + 1][0] if i + 1 < len(rows) else s[0] + 0.5
            if not s[1]:
                gap += nxt - s[0]
                start = s[0] if start is None else start
                last_bad_end = nxt
                longest = max(longest, nxt - start)
            else:
                start = None
        return {
            "samples": len(rows),
            "bad_samples": len(bad),
            "seconds_without_good_carousel": round(gap, 1),
            "longest_gap_s": round(longest, 1),
            "good_again_at_s": None if last_bad_end is None else round(last_bad_end - t0, 1),
            "versions_served": sorted({s[2] for s in rows if s[2] is not None}),
            "bad_reasons": sorted({s[3] for s in bad})[:5],
        }


# --- measuring -------------------------------------------------------------------------
def count_events(tag: str, load_out: Path) -> dict:
    from django.db import close_old_connections
    from django.db.models import Count

    from recommendations.models import Interaction

    sent = json.loads(load_out.read_text())
    close_old_connections()
    ok = set(sent["ok"])
    refused = {int(k) for k in sent["refused"]}
    stored: dict[int, int] = {}
    for row in (
        Interaction.objects.filter(source__startswith=f"faults:{tag}:")
        .values("source")
        .annotate(n=Count("id"))
    ):
        stored[int(row["source"].rsplit(":", 1)[1])] = row["n"]
    lost = sorted(ok - set(stored))
    dup = {seq: n - 1 for seq, n in stored.items() if n > 1}

    def split(seqs) -> dict:
        seqs = list(seqs)
        return {
            "with_client_event_id": sum(1 for s in seqs if s % 2 == 0),
            "without_client_event_id": sum(1 for s in seqs if s % 2 == 1),
        }

    return {
        "sent": sent["sent"],
        "load_seconds": round(sent["seconds"], 1),
        "refused": len(refused),
        "refused_kinds": sorted(set(sent["refused"].values())),
        "stored_distinct": len(stored),
        "stored_rows": sum(stored.values()),
        "lost": len(lost),
        "lost_split": split(lost),
        "duplicates": sum(dup.values()),
        "duplicates_split": split(s for s, n in dup.items() for _ in range(n)),
        "refused_but_stored": len(refused & set(stored)),
    }


def wait_flushed(stack: Stack, tag: str, limit: float = 60.0) -> dict:
    """Wait for the buffer to drain into the log (beat flushes every 10 s)."""
    from django.db import close_old_connections

    from recommendations.models import Interaction

    probe = stack.redis_client()
    t0 = time.monotonic()
    last, stable = -1, 0
    while time.monotonic() - t0 < limit:
        close_old_connections()
        try:
            n = Interaction.objects.filter(source__startswith=f"faults:{tag}:").count()
        except Exception:
            n = -1
        waiting = probe.buffered()
        if waiting == 0 and n == last:
            stable += 1
            if stable >= 2:
                break
        else:
            stable = 0
        last = n
        time.sleep(1.0)
    return {"drain_s": round(time.monotonic() - t0, 1), "left_in_buffer": probe.buffered()}


def version_view(pk: int, admin_client) -> dict:
    """What the admin shows for a version: its fields and whether its page says so."""
    from django.db import close_old_connections

    from recommendations.models import ModelVersion, RelatedItem

    close_old_connections()
    v = ModelVersion.objects.get(pk=pk)
    page = admin_client.get(f"/admin/recommendations/modelversion/{pk}/change/")
    text = page.content.decode(errors="replace") if page.status_code == 200 else ""
    error_line = (v.error or "").strip().splitlines()[0] if v.error else ""
    return {
        "version": pk,
        "status": v.status,
        "is_active": v.is_active,
        "gate_passed": v.gate_passed,
        "gate_report": (v.gate_report or "")[:300],
        "error": error_line[:300],
        "related_rows": RelatedItem.objects.filter(version_id=pk).count(),
        "admin_page_status": page.status_code,
        "admin_page_shows_error": bool(error_line) and html.escape(error_line[:60]) in text,
        "artifact": v.artifact,
    }


def wait_for(cond, limit: float, step: float = 0.2) -> float | None:
    from django.db import close_old_connections

    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        close_old_connections()
        try:
            if cond():
                return time.monotonic() - t0
        except Exception:
            pass
        time.sleep(step)
    return None


def status_of(pk: int) -> str:
    from recommendations.models import ModelVersion

    return ModelVersion.objects.filter(pk=pk).values_list("status", flat=True)[0]


def is_active(pk: int) -> bool:
    from recommendations.models import ModelVersion

    return ModelVersion.objects.filter(pk=pk, is_active=True).exists()


def queue(force: bool = True) -> int:
    from recommendations.learning.tasks import queue_training

    return queue_training(force_activate=force).pk


# --- scenarios -------------------------------------------------------------------------
def event_scenario(
    stack: Stack,
    probe: Probe,
    tag: str,
    *,
    buffered: bool,
    fault,
    at: float,
    rate: float,
    seconds: float,
) -> dict:
    proc, out = stack.start_load(tag, rate, seconds, buffered)
    t0 = time.monotonic()
    time.sleep(at)
    log(f"{tag}: fault at {at:.0f} s")
    fault_info = fault() or {}
    proc.wait()
    t_load_end = time.monotonic()
    drain = wait_flushed(stack, tag) if buffered else {}
    t1 = time.monotonic()
    res = {
        "buffered": buffered,
        "rate_per_s": rate,
        "fault_at_s": at,
        **fault_info,
        "events": count_events(tag, out),
        **drain,
        "carousel": probe.window(t0, t1),
        "load_ended_at_s": round(t_load_end - t0, 1),
    }
    return res


def s_redis_kill(stack: Stack, probe: Probe, args, *, aof: bool) -> dict:
    tag = "redis_kill_aof" if aof else "redis_kill"
    if stack.redis_aof != aof:
        stack.stop_redis()
        stack.start_redis(aof=aof)
        time.sleep(3)  # worker and beat reconnect

    def fault() -> dict:
        waiting = stack.redis_client().buffered()
        stack.kill_redis()
        t = time.monotonic()
        time.sleep(5)
        stack.start_redis()
        after = stack.redis_client().buffered()
        return {
            "buffered_at_kill": waiting,
            "buffered_after_restart": after,
            "redis_down_s": round(time.monotonic() - t, 1),
            "redis_persistence": "AOF everysec" if aof else "none (--save '' --appendonly no)",
        }

    return event_scenario(
        stack,
        probe,
        tag,
        buffered=True,
        fault=fault,
        at=args.seconds / 3,
        rate=args.rate,
        seconds=args.seconds,
    )


def s_redis_pause(stack: Stack, probe: Probe, args) -> dict:
    def fault() -> dict:
        os.kill(stack.redis.pid, signal.SIGSTOP)
        time.sleep(3)
        os.kill(stack.redis.pid, signal.SIGCONT)
        return {"redis_paused_s": 3.0, "redis_persistence": "AOF" if stack.redis_aof else "none"}

    return event_scenario(
        stack,
        probe,
        "redis_pause",
        buffered=True,
        fault=fault,
        at=args.seconds / 3,
        rate=args.rate,
        seconds=args.seconds,
    )


def s_pg_restart(stack: Stack, probe: Probe, args, *, buffered: bool) -> dict:
    tag = "pg_restart_buffered" if buffered else "pg_restart"

    def fault() -> dict:
        t = time.monotonic()
        stack.restart_pg()
        return {"pg_restart_s": round(time.monotonic() - t, 1)}

    return event_scenario(
        stack,
        probe,
        tag,
        buffered=buffered,
        fault=fault,
        at=args.seconds / 3,
        rate=args.rate,
        seconds=args.seconds,
    )


def wait_received(stack: Stack, task: str, since: int, limit: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if f"Task recommendations.tasks.{task}[" in stack.worker_log()[since:]:
            return True
        time.sleep(0.05)
    return False


def s_worker_kill_train(stack: Stack, probe: Probe, args, admin, *, redeliver: bool) -> dict:
    from recommendations.learning.versions import active_version

    tag = "worker_kill_train_redeliver" if redeliver else "worker_kill_train"
    if redeliver:  # a worker whose broker redelivers unacked tasks after 30 s
        stack.worker_env = {**stack.worker_env, "FAULTS_VISIBILITY_TIMEOUT": "30"}
        stack.kill_worker()
        time.sleep(5)
    before = active_version().pk
    proc, out = stack.start_load(tag, args.light_rate, 10_000, buffered=False)
    t0 = time.monotonic()
    v = queue()
    log(f"{tag}: queued v{v}")
    wait_for(lambda: status_of(v) == "running", 120, 0.1)
    delay = max(1.0, 0.4 * args.train_s)
    time.sleep(delay)
    st = status_of(v)
    t_kill = time.monotonic()
    stack.kill_worker()
    log(f"{tag}: killed the worker {t_kill - t0:.1f} s after queueing (v{v} {st})")
    res: dict = {
        "killed_version": v,
        "status_at_kill": st,
        "kill_after_running_s": delay,
        "previous_active": before,
        "lock_ttl_s": args.lock_ttl,
    }
    if redeliver:
        res["visibility_timeout_s"] = 30
        live = wait_for(lambda: is_active(v), args.lock_ttl + 150, 0.5)
        res["new_version_live_after_kill_s"] = (
            None if live is None else round(time.monotonic() - t_kill, 1)
        )
        target = v
    else:
        # Nothing redelivers the task within the hour (visibility_timeout): the operator
        # clicks "train now" as soon as the worker is back, and once more if that version
        # is not live after the lease's TTL and a minute.
        time.sleep(2)
        mark = len(stack.worker_log())
        first = queue()
        res["operator_queued"] = [first]
        log(f"{tag}: operator queued v{first}")
        # Live, or given up (still "queued" once its retries ran out): the lease of the dead
        # run expires after LOCK_TTL, and training takes train_s more.
        live = wait_for(
            lambda: (
                is_active(first)
                or (
                    status_of(first) == "queued"
                    and "MaxRetriesExceededError" in stack.worker_log()[mark:]
                )
            ),
            args.lock_ttl + args.train_s * 4 + 180,
            0.5,
        )
        live = live if is_active(first) else None
        target = first
        res["first_click_status"] = status_of(first)
        res["first_click_gave_up"] = "MaxRetriesExceededError" in stack.worker_log()[mark:]
        if live is None:
            res["admin_first_click_version"] = version_view(first, admin)
            target = queue()
            res["operator_queued"].append(target)
            log(f"{tag}: v{first} is {status_of(first)}; operator queued v{target}")
            live = wait_for(lambda: is_active(target), args.train_s * 4 + 180, 0.5)
        res["new_version_live_after_kill_s"] = (
            None if live is None else round(time.monotonic() - t_kill, 1)
        )
        res["killed_version_status_at_end"] = status_of(v)
    os.killpg(proc.pid, signal.SIGINT)  # the load stops and writes its tally
    proc.wait()
    res["events"] = count_events(tag, out)
    t1 = time.monotonic()
    res["carousel"] = probe.window(t0, t1)
    from recommendations.models import ModelVersion

    task_id = ModelVersion.objects.get(pk=v).task_id
    wlog = stack.worker_log()
    res["killed_task_deliveries"] = wlog.count(f"train[{task_id}] received")
    res["killed_task_trainings_started"] = wlog.count(f"v{v}: extracted")
    res["admin_killed_version"] = version_view(v, admin)
    if target != v:
        res["admin_new_version"] = version_view(target, admin)
    return res


def s_worker_kill_similarity(stack: Stack, probe: Probe, args, admin) -> dict:
    from recommendations.learning import tasks, versions
    from recommendations.models import ModelVersion, RelatedItem

    tag = "worker_kill_similarity"
    before = versions.active_version().pk
    t0 = time.monotonic()
    mark = len(stack.worker_log())
    v = queue()
    log(f"{tag}: queued v{v}")
    wait_for(lambda: status_of(v) == "succeeded", args.train_s * 4 + 120, 0.05)
    received = wait_received(stack, "score_similarity", mark, 30)
    time.sleep(0.3)
    t_kill = time.monotonic()
    stack.kill_worker()
    tail = stack.worker_log()[mark:]
    finished = any("score_similarity" in line and "succeeded" in line for line in tail.splitlines())
    log(
        f"{tag}: killed the worker during score_similarity (received {received}, "
        f"finished before the kill {finished})"
    )
    res: dict = {
        "killed_version": v,
        "previous_active": before,
        "similarity_task_received": received,
        "similarity_finished_before_kill": finished,
    }
    res["related_rows_after_kill"] = RelatedItem.objects.filter(version_id=v).count()
    time.sleep(10)  # does anything finish it by itself?
    res["active_10s_after_restart"] = versions.active_version().pk
    res["admin_after_kill"] = version_view(v, admin)
    # The operator: "recompute similarities" (activate=False), then "activate".
    tasks.score_similarity.delay(v, activate=False)
    rows = wait_for(lambda: RelatedItem.objects.filter(version_id=v).exists(), 120, 0.5)
    if rows is not None:
        time.sleep(2)  # the task writes in one transaction: rows visible = all rows
        versions.activate(ModelVersion.objects.get(pk=v), reason="(faults bench: admin)")
    res["new_version_live_after_kill_s"] = (
        round(time.monotonic() - t_kill, 1) if is_active(v) else None
    )
    t1 = time.monotonic()
    res["carousel"] = probe.window(t0, t1)
    res["admin_end"] = version_view(v, admin)
    return res


def s_storage_full(stack: Stack, probe: Probe, args, admin) -> dict:
    from recommendations.learning import versions

    if not stack.tmpfs:
        return {"skipped": "no tmpfs could be mounted (needs root)"}
    tag = "storage_full"
    before = versions.active_version().pk
    usage = shutil.disk_usage(stack.media)
    ballast = stack.media / "ballast.bin"
    free_left = 16 * 1024
    chunk = b"\0" * (1 << 20)
    with open(ballast, "wb") as fh:
        todo = max(0, usage.free - free_left)
        try:
            while todo > 0:
                fh.write(chunk[: min(todo, len(chunk))])
                todo -= len(chunk)
        except OSError:  # full a little early (block rounding): full is what we want
            pass
    free = shutil.disk_usage(stack.media).free
    log(f"{tag}: {free} bytes free on the artifact tmpfs")
    proc, out = stack.start_load(tag, args.light_rate, 10_000, buffered=False)
    t0 = time.monotonic()
    v = queue()
    done = wait_for(lambda: status_of(v) in ("failed", "succeeded"), args.train_s * 4 + 180, 0.5)
    res: dict = {
        "tmpfs_size_mib": round(usage.total / 2**20),
        "free_bytes": free,
        "previous_active": before,
        "failed_version": v,
        "failed_after_s": None if done is None else round(done, 1),
    }
    res["admin_failed_version"] = version_view(v, admin)
    res["active_still_loads"] = _loads(versions.active_version())
    leftovers = sorted(str(p.relative_to(stack.media)) for p in stack.media.rglob(f"v{v}/*"))
    res["files_left_by_failed_version"] = leftovers
    ballast.unlink()
    t_free = time.monotonic()
    target = queue()
    live = wait_for(lambda: is_active(target), args.train_s * 4 + 180, 0.5)
    res["operator_queued"] = target
    res["new_version_live_after_space_freed_s"] = (
        None if live is None else round(time.monotonic() - t_free, 1)
    )
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait()
    res["events"] = count_events(tag, out)
    res["carousel"] = probe.window(t0, time.monotonic())
    return res


def _loads(version) -> bool:
    from recommendations.learning.versions import load_version

    try:
        load_version(version)
        return True
    except Exception:
        return False


# --- main ------------------------------------------------------------------------------
def machine() -> dict:
    import django
    import numpy
    import torch

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    pg = subprocess.run(
        [str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    rd = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()[2]
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem,
        "load_1min_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "django": django.get_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "postgresql": pg,
        "redis": rd,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300, help="events/s during event faults")
    parser.add_argument(
        "--light-rate", type=float, default=50, help="events/s during the training faults"
    )
    parser.add_argument("--seconds", type=float, default=24, help="load per event scenario")
    parser.add_argument("--rows", type=int, default=30_000, help="online-retail rows loaded")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lock-ttl", type=int, default=45)
    parser.add_argument("--only", nargs="*", choices=SCENARIOS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--merge", action="store_true", help="keep the earlier results of the scenarios not run now"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "faults.json")
    args = parser.parse_args()
    chosen = args.only or SCENARIOS

    stack = Stack(args)
    os.environ.update(stack.env)
    os.environ["FAULTS_DUMMY_CACHE"] = "1"
    os.environ["FAULTS_LOG_LEVEL"] = "CRITICAL"  # the probe's 500s are counted, not printed
    sys.path[:0] = [str(ROOT), str(HERE)]
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    results: dict = {"benchmark": "faults", "date": datetime.now(UTC).isoformat(timespec="seconds")}
    probe = None
    try:
        results["machine"] = machine()
        log(f"temporary folder {stack.tmp}")
        stack.mount_tmpfs()
        stack.start_pg()
        stack.start_redis(aof=False)
        log("PostgreSQL on 5440 and Redis on 6390 are up; migrate and load the demo slice")
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=stack.env, check=True)
        t = time.monotonic()
        subprocess.run(
            [*manage, "shop_load_online_retail", "--limit", str(args.rows), "--no-progress"],
            cwd=ROOT,
            env=stack.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        results["data_load_s"] = round(time.monotonic() - t, 1)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.test import Client

        from recommendations.models import Interaction, ModelVersion, RelatedItem

        admin_user = get_user_model().objects.create_superuser("faults-admin", "a@b.c", "x")
        admin = Client()
        admin.force_login(admin_user)
        stack.start_worker()
        stack.start_beat()
        t = time.monotonic()
        v1 = queue()
        log(f"training v1 on {Interaction.objects.count():,} events")
        if wait_for(
            lambda: is_active(v1) or status_of(v1) == "failed", 900, 0.5
        ) is None or not is_active(v1):
            raise RuntimeError(
                f"v1 did not go live: {version_view(v1, admin)}\n" + stack.worker_log()[-3000:]
            )
        mv = ModelVersion.objects.get(pk=v1)
        args.train_s = (mv.finished_at - mv.started_at).total_seconds()
        results["setup"] = {
            "rows": args.rows,
            "events": Interaction.objects.count(),
            "users": mv.n_users,
            "items": mv.n_items,
            "epochs": args.epochs,
            "v1_train_s": round(args.train_s, 1),
            "v1_queue_to_live_s": round(time.monotonic() - t, 1),
            "v1_gate": mv.gate_report[:300],
        }
        item = (
            RelatedItem.objects.filter(version_id=v1, kind=RelatedItem.Kind.SIMILAR)
            .values_list("item_id", flat=True)
            .first()
        )
        probe = Probe(item)
        probe.start()
        log(
            f"v1 live after {results['setup']['v1_queue_to_live_s']} s "
            f"(training {args.train_s:.1f} s); probing item {item}"
        )
        results["settings"] = {
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "light_rate_per_s": args.light_rate,
            "lock_ttl_s": args.lock_ttl,
            "worker_concurrency": 2,
            "beat_flush_every_s": 10,
            "load_threads": 4,
        }
        scen: dict = {}
        results["scenarios"] = scen
        runners = {
            "redis_kill": lambda: s_redis_kill(stack, probe, args, aof=False),
            "redis_kill_aof": lambda: s_redis_kill(stack, probe, args, aof=True),
            "redis_pause": lambda: s_redis_pause(stack, probe, args),
            "pg_restart": lambda: s_pg_restart(stack, probe, args, buffered=False),
            "pg_restart_buffered": lambda: s_pg_restart(stack, probe, args, buffered=True),
            "worker_kill_train": lambda: s_worker_kill_train(
                stack, probe, args, admin, redeliver=False
            ),
            "worker_kill_similarity": lambda: s_worker_kill_similarity(stack, probe, args, admin),
            "worker_kill_train_redeliver": lambda: s_worker_kill_train(
                stack, probe, args, admin, redeliver=True
            ),
            "storage_full": lambda: s_storage_full(stack, probe, args, admin),
        }
        for name in SCENARIOS:
            if name not in chosen:
                continue
            log(f"--- {name}")
            exits = len(stack.unplanned_exits)
            try:
                scen[name] = runners[name]()
            except Exception as exc:
                scen[name] = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=6),
                }
            scen[name]["worker_exits_unplanned"] = stack.unplanned_exits[exits:]
            log(f"{name}: {json.dumps(scen[name], default=str)}")
    finally:
        if probe is not None:
            probe.stop.set()
            probe.join(5)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        tail = stack.worker_log()[-4000:]
        stack.teardown()
    results["worker_log_tail"] = tail.splitlines()[-20:]
    for data in results.get("scenarios", {}).values():
        data["run_date"] = results["date"]
    if args.merge and args.output.exists():
        earlier = json.loads(args.output.read_text())
        runs = earlier.get("runs") or [{k: earlier.get(k) for k in ("date", "machine", "setup")}]
        results["runs"] = [*runs, {k: results.get(k) for k in ("date", "machine", "setup")}]
        results["scenarios"] = {**earlier.get("scenarios", {}), **results.get("scenarios", {})}
        results["scenarios"] = {
            k: results["scenarios"][k] for k in SCENARIOS if k in results["scenarios"]
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
