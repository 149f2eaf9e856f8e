"""The interaction log's write side: :func:`record` is the one way an event enters it.

Rooms: :mod:`.recording` (validate and record), :mod:`.storage` (write rows),
:mod:`.buffer` (optional Redis buffer), :mod:`.visitors` (signed anonymous ids),
:mod:`.middleware`, :mod:`.receivers` (the shop's signals), :mod:`.privacy` (forget,
export), :mod:`.consent` (may a request be tracked) and :mod:`.consent_views`,
:mod:`.ratelimit`, :mod:`.views` (the click beacon), :mod:`.keys`.
"""

from .recording import (
    RecordResult,
    TrackingError,
    merge_visitor_into_user,
    opt_in,
    opt_out,
    record,
    record_many,
    should_track,
)

__all__ = [
    "RecordResult",
    "TrackingError",
    "merge_visitor_into_user",
    "opt_in",
    "opt_out",
    "record",
    "record_many",
    "should_track",
]
