"""Whether a trained candidate may replace what is served: the gate, in one sentence.

It reads the temporal protocol's test results (see :mod:`.training`): on the same stable
held-out shoppers, the candidate must beat the best simple baseline (buy-again, recent best
sellers, EASE) and must not fall below the active version by more than the noise allowance.
An active version that could not be tested (its artifact is broken) does not hold it back.
"""

from __future__ import annotations

from typing import Any

from ..conf import app_settings


def gate(metrics: dict[str, Any]) -> tuple[bool, str]:
    """``(passed, report)``: the report says by how much, against whom."""
    cfg = app_settings.GATE
    name = cfg["METRIC"]
    ours = (metrics.get("candidate") or {}).get(name)
    if ours is None:
        return False, f"Gate failed: no {name} for the candidate."
    reasons, passed = [], True
    baselines = {
        b: entry[name]
        for b, entry in (metrics.get("baselines") or {}).items()
        if isinstance((entry or {}).get(name), int | float)
    }
    if baselines:
        best = max(baselines, key=baselines.get)
        needed = baselines[best] * (1 + cfg["MIN_LIFT_OVER_BASELINES"])
        ok = ours > needed
        passed &= ok
        reasons.append(
            f"{name} {ours:.4f} {'beats' if ok else 'does not beat'} the best baseline "
            f"{best} {baselines[best]:.4f}{_ratio(ours, baselines[best])}"
        )
    else:
        passed = False
        reasons.append("no baseline was measured")
    active = metrics.get("active") or {}
    if isinstance(active.get(name), int | float):
        floor = active[name] * (1 - cfg["MAX_DROP_FROM_ACTIVE"])
        ok = ours >= floor
        passed &= ok
        reasons.append(
            f"{'is not worse than' if ok else 'is worse than'} active v{active['version']} "
            f"{active[name]:.4f}{_ratio(ours, active[name])}"
            f" (allowance {cfg['MAX_DROP_FROM_ACTIVE']:.0%})"
        )
    elif active.get("untested"):  # broken: nothing to hold the candidate to
        reasons.append(f"active v{active['version']} could not be tested ({active['untested']})")
    return passed, ("Gate passed: " if passed else "Gate failed: ") + "; ".join(reasons) + "."


def _ratio(ours: float, theirs: float) -> str:
    return f", {ours / theirs:.3f}x" if theirs > 0 else ""
