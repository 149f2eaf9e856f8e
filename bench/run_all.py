#!/usr/bin/env python
"""Run every benchmark in bench/ in sequence and print a summary (``make bench``).

    .venv/bin/python bench/run_all.py                     # all of them
    .venv/bin/python bench/run_all.py --only similarity extract
    .venv/bin/python bench/run_all.py --skip ml_quality --timeout 900

Order: similarity, extract, pipeline, serving (it reuses pipeline's database), ml_quality,
ml_speed, then gpu.sh when torch sees a CUDA device; then any other executable script that
appears in bench/. Each writes its JSON to bench/results/. A benchmark that fails or runs
past ``--timeout`` is reported and the next one runs; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
ORDER = ["similarity", "extract", "pipeline", "serving", "ml_quality", "ml_speed", "gpu.sh"]
RESULT_FILE = {"gpu.sh": "gpu.json"}
NOT_BENCHMARKS = {"run_all.py"}


def discover() -> list[str]:
    found = [
        p.name for p in sorted(BENCH.iterdir())
        if p.is_file() and os.access(p, os.X_OK) and not p.name.startswith(("_", "."))
        and p.suffix not in (".py", ".md", ".json", ".lua", ".html") and p.name not in ORDER
        and p.name not in NOT_BENCHMARKS
    ]
    return [name for name in ORDER if (BENCH / name).is_file()] + found


def cuda_available() -> bool:
    try:
        code = "import torch; print(torch.cuda.is_available())"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        return out.stdout.strip() == "True"
    except (OSError, subprocess.TimeoutExpired):
        return False


def headline(name: str) -> str:
    """One line from the benchmark's JSON ``summary`` (ours) or its file's presence."""
    path = RESULTS / RESULT_FILE.get(name, f"{name}.json")
    if not path.exists():
        return "(no result file)"
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return f"(unreadable {path.name})"
    s = data.get("summary")
    if not isinstance(s, dict):
        return f"see bench/results/{path.name}"
    if name == "similarity":
        parts = [f"topk/bare numpy {s['ratio_topk_vs_bare_numpy']:.2f}x"]
        if "ratio_topk_vs_bare_torch_cpu" in s:
            parts.append(f"torch-cpu {s['ratio_topk_vs_bare_torch_cpu']:.2f}x")
        parts.append(f"peak {s.get('peak_mib_numpy') or 0:.0f} MiB (goal <=2x, <1 GiB)")
        return ", ".join(parts)
    if name == "extract":
        return "; ".join(
            f"{db}: {v['extract_log_s']:.2f}s vs fetchall {v['fetchall_s']:.2f}s "
            f"({v['ratio_extract_vs_fetchall']:.2f}x)" for db, v in s.items() if isinstance(v, dict)
        ) + " (goal 1M < 10 s)"
    if name == "pipeline":
        return (f"train command {s['train_command_s']:.0f}s on {s.get('device')} "
                f"(goal < 300 s: {'met' if s.get('goal_met') else 'NOT met'})")
    if name == "serving":
        return ", ".join(f"{k} {v['ratio']:.2f}x" for k, v in s.items()
                         if isinstance(v, dict) and "ratio" in v)
    return json.dumps(s)[:150]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--skip", nargs="*", default=[])
    p.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only is not None:
        names = [n for n in names if n in args.only]
    names = [n for n in names if n not in args.skip]
    rows = []
    for name in names:
        path = BENCH / name
        if name == "gpu.sh" and not cuda_available():
            print(f"=== {name}: skipped (no CUDA device visible to torch)", flush=True)
            rows.append((name, "skipped", 0.0, "no CUDA device"))
            continue
        cmd = ["bash", str(path)] if name.endswith(".sh") else [sys.executable, str(path)]
        print(f"\n=== {name}: {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(cmd, cwd=ROOT, timeout=args.timeout).returncode
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            status = f"timeout {args.timeout:.0f}s"
        seconds = time.perf_counter() - t0
        rows.append((name, status, seconds, headline(name) if status == "ok" else ""))
    print("\n=== summary")
    width = max((len(r[0]) for r in rows), default=4)
    for name, status, seconds, line in rows:
        print(f"{name.ljust(width)}  {status:10s} {seconds:7.0f}s  {line}")
    return 0 if all(r[1] in ("ok", "skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
