"""Shared pieces of bench/similarity, bench/extract, bench/pipeline and bench/serving.

Machine information, JSON results, peak-memory probes, the instacart loader and the
preparation of a demo database (online-retail loaded, a model trained) in a scratch folder.
Nothing here imports Django at module level: each benchmark sets its database first.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SCRATCH = ROOT / "var" / "bench"  # ignored by git (/var/)
DEMO_DIR = SCRATCH / "demo"  # the demo database + media written by bench/pipeline
PYTHON = sys.executable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- machine and results ---------------------------------------------------------------


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (the 1-minute load shows a shared machine)."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": cpu_model,
        "memory_gib": mem_gib,
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "pandas": _version("pandas"),
        "torch": _version("torch"),
        "django": _version("django"),
    }


def write_result(name: str, data: dict[str, Any], machine: dict[str, Any] | None = None) -> Path:
    """``bench/results/NAME.json`` with the machine info first."""
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": name, "machine": machine or machine_info(), **data}
    path.write_text(json.dumps(out, indent=2, default=_json_default) + "\n")
    print(f"wrote {path.relative_to(ROOT)}", flush=True)
    return path


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, _dt.datetime | _dt.date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- memory ------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mib() -> float | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mib() -> float | None:
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux: ``5`` > /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak Python/numpy heap (tracemalloc) and peak RSS growth over a ``with`` block.

    tracemalloc sees numpy's buffers but not torch's allocator; the RSS peak sees both.
    ``rss_peak_delta_mib`` is None where the high-water mark cannot be reset.
    """

    def __init__(self, trace: bool = True) -> None:
        # trace=False: RSS only (tracemalloc slows code that makes millions of small objects)
        self.trace = trace
        self.tracemalloc_peak_mib: float | None = None

    def __enter__(self) -> PeakMemory:
        import gc
        import tracemalloc

        gc.collect()
        self.rss_reset = reset_peak_rss()
        self.rss_before = rss_mib()
        if self.trace:
            tracemalloc.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import tracemalloc

        if self.trace:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            self.tracemalloc_peak_mib = peak / 2**20
        peak_rss = peak_rss_mib()
        self.rss_peak_delta_mib = (
            peak_rss - self.rss_before
            if self.rss_reset and peak_rss is not None and self.rss_before is not None
            else None
        )
        self.rss_peak_mib = peak_rss if self.rss_reset else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tracemalloc_peak_mib": (
                None if self.tracemalloc_peak_mib is None else round(self.tracemalloc_peak_mib, 1)
            ),
            "rss_before_mib": None if self.rss_before is None else round(self.rss_before, 1),
            "rss_peak_mib": None if self.rss_peak_mib is None else round(self.rss_peak_mib, 1),
            "rss_peak_delta_mib": (
                None if self.rss_peak_delta_mib is None else round(self.rss_peak_delta_mib, 1)
            ),
        }


# --- datasets ----------------------------------------------------------------------------


def datasets_dir() -> Path:
    env = os.environ.get("RECOMMENDATIONS_DATASETS_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "datasets"


def instacart_path() -> Path:
    return datasets_dir() / "instacart-train-baskets" / "order_products__train.csv.gz"


# --- Django and the demo database ----------------------------------------------------------


def bench_env(database_url: str, media_root: Path, **extra: str) -> dict[str, str]:
    """Environment for a Django process on a bench database: ``bench/settings_bench.py``
    (shop.settings with MEDIA_ROOT moved, so model artifacts never touch the shop's own)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="settings_bench",
        PYTHONPATH=os.pathsep.join([str(BENCH), str(ROOT)]),
        DATABASE_URL=database_url,
        BENCH_MEDIA_ROOT=str(media_root),
        PYTHONUNBUFFERED="1",
    )
    env.pop("CELERY_BROKER_URL", None)  # eager tasks: the bench times the work, not a queue
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def setup_django(database_url: str, media_root: Path | None = None) -> None:
    """Configure this process for ``database_url`` (before any Django import)."""
    for path in (str(BENCH), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings_bench"
    os.environ["DATABASE_URL"] = database_url
    os.environ["BENCH_MEDIA_ROOT"] = str(media_root or (SCRATCH / "media-unused"))
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def run_timed(
    cmd: Sequence[str],
    env: dict[str, str],
    *,
    timeout: float,
    echo: bool = True,
    on_line: Callable[[float, str], None] | None = None,
) -> tuple[int, float, list[tuple[float, str]]]:
    """Run ``cmd`` from the repo root; returns (exit code, wall seconds, [(t, line), ...])
    where ``t`` is the second since start at which each output line arrived."""
    t0 = time.perf_counter()
    lines: list[tuple[float, str]] = []
    proc = subprocess.Popen(
        list(cmd), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1,
    )
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            t = time.perf_counter() - t0
            # tqdm redraws with carriage returns: keep the last state of the line
            line = raw.rstrip("\n").split("\r")[-1]
            lines.append((t, line))
            if on_line:
                on_line(t, line)
            if echo:
                print(f"  [{t:7.1f}s] {line}", flush=True)
            if t > timeout:
                proc.kill()
                break
        proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - t0)))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode, time.perf_counter() - t0, lines


def prepare_demo_db(directory: Path, *, timeout: float = 900, echo: bool = True
                    ) -> dict[str, Any]:
    """A fresh ``directory/db.sqlite3``: migrate, load online-retail, train (timed apart)."""
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "media").mkdir(parents=True)
    url = f"sqlite:///{directory / 'db.sqlite3'}"
    env = bench_env(url, directory / "media")
    manage = str(ROOT / "manage.py")
    steps: dict[str, Any] = {}
    for name, args in (
        ("migrate", ["migrate", "--noinput", "-v", "0"]),
        ("load_online_retail", ["shop_load_online_retail", "--no-progress"]),
        ("recommendations_train", ["recommendations_train"]),
    ):
        if echo:
            print(f"$ manage.py {' '.join(args)}", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        rc, seconds, lines = run_timed([PYTHON, manage, *args], env, timeout=timeout, echo=echo)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        steps[name] = {"rc": rc, "seconds": seconds, "cpu_seconds": cpu, "lines": lines}
        if rc != 0:
            tail = "\n".join(line for _, line in lines[-20:])
            raise RuntimeError(f"manage.py {' '.join(args)} failed (exit {rc}):\n{tail}")
    return {"database_url": url, "media_root": directory / "media", "steps": steps}


def demo_db_ready(directory: Path = DEMO_DIR) -> bool:
    """Whether ``directory`` holds a demo database with an active model version."""
    import sqlite3

    db = directory / "db.sqlite3"
    if not db.exists():
        return False
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT COUNT(*) FROM recommendations_modelversion WHERE is_active"
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return bool(row and row[0])


_TAG = re.compile(r"\{%\s*(related_items|bought_together|recently_viewed|recommended_for_you"
                  r"|trending)\b[^%]*%\}")


def strip_carousels(template_text: str) -> tuple[str, list[str]]:
    """The template without its carousel tags; and the tags removed."""
    removed = [m.group(0) for m in _TAG.finditer(template_text)]
    return _TAG.sub("", template_text), removed
