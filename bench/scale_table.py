"""Print bench/results/scale.json's catalogue mode (and ann.json) as the Markdown tables of
bench/README.md and docs/scaling.md:  .venv/bin/python bench/scale_table.py"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def scale() -> str:
    run = json.loads((RESULTS / "scale.json").read_text())["catalogues"]
    rows = ["| items | model | path | served cache | per worker above a bare one, 2 workers: "
            "Rss / **Pss** / private | for-me cold p50 / **p99** | related items: time, peak "
            "| training on CPU: time, peak |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for size, c in sorted(run["catalogues"].items(), key=lambda kv: int(kv[0])):
        tr = c.get("training")
        train = (f"{tr['seconds']:.0f} s, {tr['peak_rss_mib'] / 1024:.1f} GiB "
                 f"({tr['users']:,} shoppers, {tr['epochs']} epochs)") if tr else "not run"
        rel = c.get("related")
        related = (f"{rel['seconds']:.1f} s ({rel['method']}), {rel['peak_rss_mib']:.0f} MiB"
                   if rel else "")
        model = "trained" if tr else "synthetic weights"
        for mode, p in c["paths"].items():
            w = p["workers"]
            mem = " / ".join(f"{min(x[k] for x in w):.0f}-{max(x[k] for x in w):.0f}"
                             if round(min(x[k] for x in w)) != round(max(x[k] for x in w))
                             else f"{w[0][k]:.0f}"
                             for k in ("rss_above_bare_mib", "pss_above_bare_mib",
                                       "anon_above_bare_mib"))
            lat = (f"{max(x['fold_in_p50_ms'] for x in w):.1f} / "
                   f"**{max(x['fold_in_p99_ms'] for x in w):.1f}** ms")
            default = " (default)" if mode == c["default_path"] else ""
            rows.append(f"| {int(size):,} | {model} | {mode}{default} | {p['cache_mib']:.0f} MiB "
                        f"(converted in {p['convert_seconds']:.1f} s) | {mem} MiB | {lat} | "
                        f"{related} | {train} |")
            related = train = ""
    return "\n".join(rows)


def ann() -> str:
    data = json.loads((RESULTS / "ann.json").read_text())
    rows = ["| vectors | library | build (2 threads) | index file | private MiB per worker "
            "| recall@100 at ef 128 / 256 / 512 | query p50 at ef 256 |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, cat in data["catalogues"].items():
        name = "demo model" if label == "demo" else f"synthetic {int(label):,}"
        for lib, r in cat["libraries"].items():
            by = r["by_ef"]
            rec = " / ".join(f"{by[str(ef)]['recall@100']:.3f}" for ef in (128, 256, 512))
            rows.append(f"| {name} ({cat['items']:,} x {cat['dim']}) | {lib} | "
                        f"{r['build_seconds']:.1f} s | {r['index_mib']:.0f} MiB | "
                        f"{r['worker_private_mib']:.0f} | {rec} | "
                        f"{by['256']['p50_ms']:.2f} ms |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(scale())
    print()
    print(ann())
