#!/usr/bin/env python
"""Print bench/results/faults.json as the markdown table of bench/README.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "results" / "faults.json"


def row(name: str, s: dict) -> str:
    if "error" in s or "skipped" in s:
        return f"| {name} | {s.get('error') or s.get('skipped')} | | | | | | |"
    ev = s.get("events", {})
    lost = ev.get("lost", "")
    if lost:
        split = ev["lost_split"]
        lost = (
            f"**{lost}** ({split['with_client_event_id']} with id, "
            f"{split['without_client_event_id']} without)"
        )
    dup = ev.get("duplicates", "")
    if dup:
        split = ev["duplicates_split"]
        dup = f"**{dup}** (all without id)" if not split["with_client_event_id"] else f"**{dup}**"
    car = s.get("carousel", {})
    gap = car.get("seconds_without_good_carousel", "")
    live = s.get("new_version_live_after_kill_s", s.get("new_version_live_after_space_freed_s"))
    live = (
        ""
        if "killed_version" not in s and "failed_version" not in s
        else ("never (in the run)" if live is None else f"{live}")
    )
    return (
        f"| {name} | {ev.get('sent', '')} | {ev.get('refused', '')} | "
        f"{ev.get('stored_rows', '')} | {lost} | {dup} | {gap} | {live} |"
    )


def main() -> int:
    data = json.loads((Path(sys.argv[1]) if len(sys.argv) > 1 else PATH).read_text())
    print(
        "| scenario | sent | refused | stored rows | lost | duplicates "
        "| s without a good carousel | new version live after (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, s in data["scenarios"].items():
        print(row(name, s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
