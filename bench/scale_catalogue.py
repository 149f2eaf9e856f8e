"""bench/scale's catalogue mode: serving, related items and training at 10K, 50K, 500K items.

For each catalogue size (``bench/scale --catalogues 10000 50000 500000``):

1. **Model.** Where training fits, the default model (``next_basket``) is trained on CPU for
   a few epochs on a synthetic log (:mod:`_synthetic`: Zipf popularity and basket sizes fit
   to online-retail; shoppers with a taste for a few aisles), in a child process whose wall
   time and peak RSS are recorded. Where it does not, the served arrays are made directly:
   random weights with the shapes the trained model would have (width by
   ``vae.resolve_width``; no EASE term above its memory cap), through the same served
   format (``serving_model.convert`` of a synthetic artifact), and the result says so.
2. **Served cache.** ``served_cache.load_served`` converts it once (timed; with the ANN
   index at ``ANN["MIN_ITEMS"]`` items or more).
3. **Workers.** Two child processes (Django set up with the shop's settings, the serving
   modules imported: a bare worker) each map the cache, build the pool's entry, and serve
   300 cold "for you" fold-ins through ``serving.personal.fold_in`` (histories drawn with
   the synthetic popularity and basket sizes); both stay alive while the parent reads
   their ``smaps_rollup``. Reported per worker: Rss / Pss / anonymous memory above the
   bare worker, fold-in p50 / p99.
4. **Related items.** ``similarity.topk_cosine_on_best_device`` (k = RELATED_ITEMS_K) over
   the item vectors in a child: wall time and peak RSS (exact below ``ANN["MIN_ITEMS"]``,
   the HNSW graph above).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import _common as c
import _synthetic as syn
import numpy as np

N_REQUESTS = 300

TRAIN_CHILD = r"""
import json, os, resource, sys, time
import numpy as np
sys.path.insert(0, os.environ["BENCH"])
import scipy.sparse as sp
import _synthetic as syn
from recommendations.ml.models import REGISTRY
n_items, n_users, epochs = (int(os.environ[k]) for k in ("ITEMS", "USERS", "EPOCHS"))
X = syn.interactions(n_users, n_items, seed=0)
t0 = time.perf_counter()
model = REGISTRY["next_basket"](epochs=epochs, patience=None, max_validation_users=500)
n_val = min(1000, n_users // 10)
hist, truth = syn.split_rows(X[:n_val], seed=1)
model.fit(X[n_val:], (hist, truth))
seconds = time.perf_counter() - t0
model.save(os.environ["OUT"])
print(json.dumps({"seconds": seconds, "peak_rss_mib": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, "users": n_users, "epochs": epochs,
    "nnz": int(X.nnz), "hyperparameters": {k: v for k, v in model.hyperparameters().items()
                                            if k in ("hidden", "latent", "skip_l2")},
    "ease_term": model.vae.net_.skip_B is not None}))
"""

WORKER_CHILD = r"""
import json, os, sys, time
import numpy as np

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
def rollup():
    out = {}
    for line in open("/proc/self/smaps_rollup"):
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return out

import django
django.setup()
from recommendations.serving import pool
from recommendations.serving.personal import fold_in
import recommendations.serving.lists  # noqa: F401  (what a worker imports anyway)
from recommendations.learning.versions import LoadedVersion
from recommendations.ml import served_cache
bare = {"rss": status("VmRSS"), "anon": status("RssAnon"), "pss": rollup()["Pss"]}
print(json.dumps({"bare": bare}), flush=True)
sys.stdin.readline()  # the parent read our bare smaps_rollup
t0 = time.perf_counter()
model = served_cache.open_cached(os.environ["CACHE"], os.environ["KEY"])
n = model.n_items
loaded = LoadedVersion(1, model, np.arange(1, n + 1, dtype=np.int64),
                       {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}, 30.0)
entry = (loaded, pool._unit_vectors(model), pool.ItemIndex(loaded.item_ids))
pool.active_model._current.set(entry)  # what ActiveModel.get() sets for a request
sys.path.insert(0, os.environ["BENCH"])
import _synthetic as syn
rng = np.random.default_rng(int(os.environ["SEED"]))
p = syn.popularity(n)
sizes = syn.basket_sizes(N := int(os.environ["N_REQUESTS"]) + 1, rng)
events = np.array(["view", "add_to_cart", "purchase"])
def visitor(size):
    items = rng.choice(n, min(int(size), 40), p=p) + 1
    now = time.time()
    return [(int(i), str(e), now - float(a)) for i, e, a in zip(
        items, rng.choice(events, len(items), p=[0.7, 0.2, 0.1]),
        rng.uniform(0, 30 * 86400, len(items)))]
first = fold_in(loaded, visitor(sizes[0]), 36)
load_s = time.perf_counter() - t0
times = []
for size in sizes[1:]:
    h = visitor(size)
    t = time.perf_counter()
    got = fold_in(loaded, h, 36)
    times.append((time.perf_counter() - t) * 1000)
roll = rollup()
by_file, path = {}, None
for line in open("/proc/self/smaps"):
    parts = line.split()
    if parts and not parts[0].endswith(":"):  # a mapping's header line
        path = parts[5] if len(parts) > 5 and parts[5].startswith(os.environ["CACHE"]) else None
    elif path and parts[0] == "Rss:":
        name = os.path.basename(path)
        by_file[name] = by_file.get(name, 0) + int(parts[1]) / 1024
print(json.dumps({"cache_rss_by_file_mib": {k: round(v, 1) for k, v in sorted(
    by_file.items(), key=lambda kv: -kv[1]) if v >= 1},
    "n_items": n, "ann": model.meta.get("ann", False), "torch_imported": "torch" in sys.modules,
    "load_and_first_fold_in_s": load_s, "fold_in_p50_ms": float(np.percentile(times, 50)),
    "fold_in_p99_ms": float(np.percentile(times, 99)), "listed": len(got),
    "rss_mib": status("VmRSS"), "anon_mib": status("RssAnon"), "pss_mib": roll["Pss"],
    "bare": bare}), flush=True)
sys.stdin.readline()  # stay alive while the parent reads our smaps_rollup
"""

RELATED_CHILD = r"""
import json, os, resource, sys, time
import numpy as np
from recommendations.ml import served_cache
from recommendations.ml.similarity import topk_cosine_on_best_device
model = served_cache.open_cached(os.environ["CACHE"], os.environ["KEY"])
vectors = np.asarray(model.item_vectors())
t0 = time.perf_counter()
idx, val = topk_cosine_on_best_device(vectors, int(os.environ["K"]),
                                      ann_min_items=int(os.environ["ANN_MIN"]))
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mib": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, "pairs": int((idx >= 0).sum()),
    "method": "hnsw" if len(vectors) >= int(os.environ["ANN_MIN"]) else "exact"}))
"""


def _rollup(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return out


def _run(code: str, env: dict[str, str], timeout: float = 1800) -> dict:
    out = subprocess.run([c.PYTHON, "-c", code], env=env, cwd=c.ROOT, capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def synthetic_artifact(n_items: int, path: Path, seed: int = 0) -> dict[str, Any]:
    """A next-basket artifact with random weights of the trained model's shapes at
    ``n_items`` (no EASE term: refused above its memory cap), saved as training saves."""
    from recommendations.ml.artifacts import save_artifact
    from recommendations.ml.next_basket import FALLBACK_BLEND
    from recommendations.ml.vae import VAEConfig

    cfg = VAEConfig().resolve_width(n_items)
    hidden, latent = cfg.hidden, cfg.latent
    rng = np.random.default_rng(seed)
    W, b, _ = syn.item_vectors(n_items, latent, seed=seed)
    trend = syn.popularity(n_items).astype(np.float32)
    w1 = np.empty((n_items, hidden), np.float32)
    for lo in range(0, n_items, 100_000):
        hi = min(n_items, lo + 100_000)
        w1[lo:hi] = rng.standard_normal((hi - lo, hidden), np.float32) * 0.05
    arrays = {
        "trend": trend,
        "vae/state/encoder.fc1.weight": w1,
        "vae/state/encoder.fc1.bias": np.zeros(hidden, np.float32),
        "vae/state/encoder.fc2.weight": rng.standard_normal((2 * latent, hidden),
                                                            np.float32) * 0.05,
        "vae/state/encoder.fc2.bias": np.zeros(2 * latent, np.float32),
        "vae/state/decoder.0.weight": W,
        "vae/state/decoder.0.bias": b,
    }
    from recommendations.ml.models import REGISTRY

    hp = REGISTRY["next_basket"]().hyperparameters()
    extra = {"n_items": n_items, "vae": {}, "blend": dict(FALLBACK_BLEND), "blend_search": {}}
    save_artifact(path, "next_basket", hp, arrays, extra)
    return {"hidden": hidden, "latent": latent, "ease_term": False}


def one_catalogue(n_items: int, train: bool, ann_min: int, scratch: Path,
                  users: int, epochs: int, related: bool = True) -> dict[str, Any]:

    res: dict[str, Any] = {"items": n_items}
    art = scratch / f"model-{n_items}.npz"
    env = {**os.environ, "BENCH": str(c.BENCH), "PYTHONPATH": str(c.ROOT)}
    if train:
        print(f"{n_items:,} items: training next_basket ({users:,} shoppers, {epochs} "
              f"epochs, CPU)", flush=True)
        res["training"] = _run(TRAIN_CHILD, {**env, "ITEMS": str(n_items), "USERS": str(users),
                                             "EPOCHS": str(epochs), "OUT": str(art)})
        res["model"] = "trained"
        print(f"  trained in {res['training']['seconds']:.0f}s, peak RSS "
              f"{res['training']['peak_rss_mib']:.0f} MiB", flush=True)
    else:
        res["model"] = "synthetic weights (training not run at this size)"
        res["shapes"] = synthetic_artifact(n_items, art)
    cache = scratch / "cache"
    modes = ["exact", "ann"] if n_items <= 50_000 else ["ann"]
    res["default_path"] = "ann" if n_items >= ann_min else "exact"
    res["paths"] = {}
    for mode in modes:
        print(f"  {mode} path:", flush=True)
        res["paths"][mode] = _serve(art, cache, None if mode == "exact"
                                    else min(ann_min, n_items), scratch)
    art.unlink()
    key = _key(art, min(ann_min, n_items))
    if not related:
        shutil.rmtree(cache, ignore_errors=True)
        return res
    res["related"] = _run(RELATED_CHILD, {**env, "CACHE": str(cache), "KEY": key, "K": "20",
                                          "ANN_MIN": str(ann_min)})
    print(f"  related items ({res['related']['method']}): {res['related']['seconds']:.1f}s, "
          f"peak RSS {res['related']['peak_rss_mib']:.0f} MiB", flush=True)
    shutil.rmtree(cache, ignore_errors=True)
    return res


def _key(art: Path, ann_min: int | None) -> str:
    from recommendations.ml import served_cache

    return served_cache.cache_key(hashlib.sha256(art.name.encode()).hexdigest(), 64, ann_min)


def _serve(art: Path, cache: Path, ann_min: int | None, scratch: Path) -> dict[str, Any]:
    """Convert ``art`` into the served cache, then two workers map it and serve."""
    from recommendations.ml import served_cache

    res: dict[str, Any] = {}
    key = _key(art, ann_min)
    t0 = time.perf_counter()
    model = served_cache.load_served(art, cache, key, 64, ann_min)
    res["convert_seconds"] = time.perf_counter() - t0
    res["ann"] = bool(model.meta.get("ann"))
    res["cache_mib"] = sum(f.stat().st_size for f in (cache / key).glob("*.npy")) / 2**20
    if "vae/ann/index" in model.arrays:
        res["ann_index_mib"] = model.arrays["vae/ann/index"].nbytes / 2**20
    del model
    print(f"    served cache{' with the ANN index' if res['ann'] else ''}: "
          f"{res['cache_mib']:.0f} MiB, converted in {res['convert_seconds']:.1f}s", flush=True)
    wenv = {**c.bench_env(f"sqlite:///{scratch / 'bare.sqlite3'}", scratch / "media"),
            "BENCH": str(c.BENCH), "CACHE": str(cache), "KEY": key,
            "N_REQUESTS": str(N_REQUESTS)}
    procs = [subprocess.Popen([c.PYTHON, "-c", WORKER_CHILD], env={**wenv, "SEED": str(s)},
                              cwd=c.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for s in (1, 2)]
    try:
        bare = [json.loads(p.stdout.readline()) for p in procs]
        bare_roll = [_rollup(p.pid) for p in procs]
        for p in procs:
            p.stdin.write("\n")
            p.stdin.flush()
        reports = [json.loads(p.stdout.readline()) for p in procs]
        rolls = [_rollup(p.pid) for p in procs]  # both alive, both mapping the cache
    finally:
        for p in procs:
            p.communicate("\n", timeout=120)
    res["workers"] = [{
        "rss_above_bare_mib": r["Rss"] - b0["Rss"], "pss_above_bare_mib": r["Pss"] - b0["Pss"],
        "anon_above_bare_mib": r.get("Anonymous", 0) - b0.get("Anonymous", 0),
        "bare_rss_mib": b0["Rss"], "fold_in_p50_ms": rep["fold_in_p50_ms"],
        "fold_in_p99_ms": rep["fold_in_p99_ms"], "load_and_first_fold_in_s":
            rep["load_and_first_fold_in_s"], "torch_imported": rep["torch_imported"],
        "ann": rep["ann"], "cache_rss_by_file_mib": rep["cache_rss_by_file_mib"]}
        for r, b0, rep in zip(rolls, bare_roll, reports, strict=True)]
    del bare
    for i, w in enumerate(res["workers"]):
        print(f"    worker {i + 1} of 2: Rss +{w['rss_above_bare_mib']:.0f} MiB, Pss "
              f"+{w['pss_above_bare_mib']:.0f} MiB, anonymous +{w['anon_above_bare_mib']:.0f} "
              f"MiB; for-me cold p50 {w['fold_in_p50_ms']:.1f} ms, p99 "
              f"{w['fold_in_p99_ms']:.1f} ms; mapped cache Rss by file (MiB): "
              f"{w['cache_rss_by_file_mib']}", flush=True)

    return res


def run(sizes: list[int], train_sizes: list[int], ann_min: int, users: int,
        epochs: int, related: bool = True) -> dict[str, Any]:
    scratch = c.SCRATCH / "scale-catalogue"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    env_db = c.bench_env(f"sqlite:///{scratch / 'bare.sqlite3'}", scratch / "media")
    subprocess.run([c.PYTHON, str(c.ROOT / "manage.py"), "migrate", "-v", "0"], env=env_db,
                   check=True)
    out: dict[str, Any] = {"ann_min_items": ann_min, "synthetic": syn.describe(),
                           "requests_per_worker": N_REQUESTS, "catalogues": {}}
    try:
        for n in sizes:
            out["catalogues"][str(n)] = one_catalogue(n, n in train_sizes, ann_min, scratch,
                                                      users, epochs, related)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out
