"""Cache keys shared by the read side and the write side (tracking invalidates them)."""

from __future__ import annotations

ACTIVE_VERSION = "recommendations:active-version"
#: The catalogue epoch (services.catalogue_epoch): replaced when items or their stock change.
CATALOGUE_EPOCH = "recommendations:catalogue-epoch"


def visitor(user_id: int | None, visitor_id: str | None) -> str:
    """One key per shopper holding all their cached "for you" lists."""
    return f"recommendations:visitor:{'u' + str(user_id) if user_id else 'v' + (visitor_id or '')}"


def dismissed(user_id: int | None, visitor_id: str | None) -> str:
    """One key per shopper holding the items they said "not interested" in."""
    who = f"u{user_id}" if user_id else f"v{visitor_id or ''}"
    return f"recommendations:dismissed:{who}"


def related(version_id: int, kind: str, item_id: int) -> str:
    return f"recommendations:related:{version_id}:{kind}:{item_id}"


def popular(window_days: int | None) -> str:
    return f"recommendations:popular:v2:{window_days}"  # v2: rows hold category tuples


def trending(window_days: int) -> str:
    return f"recommendations:trending:{window_days}"


def new_items(version_id: int) -> str:
    """A token replaced whenever a version's new items are placed again (serving reloads)."""
    return f"recommendations:new-items:{version_id}"
