"""Durations as people type them on the console ('4h', '2d', '1d 4h') and as the console shows them.

Pure module: the process pages here and the SLA and queue pages of the exceptions app parse and label with it.
"""

import re
from datetime import timedelta

from console.lib.errors import DomainError

_DURATION_RE = re.compile(r"^(?:\d+[wdhm])+$")
_DURATION_PART_RE = re.compile(r"(\d+)([wdhm])")
_DURATION_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
# Longer allowances or targets are typos ("400d"), not plans: nobody waits more than a year for the next step.
MAX_DURATION = timedelta(days=366)


def duration_parse(text: str) -> timedelta:
    """'4h', '2d', '90m', '1w' or a combination ('1d 4h') as a timedelta; DomainError with the reason otherwise."""
    compact = re.sub(r"\s+", "", (text or "").lower())
    if not compact:
        raise DomainError("enter a duration such as 4h or 2d")
    if not _DURATION_RE.match(compact):
        raise DomainError(f"{text.strip()!r} is not a duration: use a number and w, d, h or m, e.g. 4h, 2d or 1d 4h")
    value = sum((int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART_RE.findall(compact)), start=timedelta())
    if value <= timedelta():
        raise DomainError("the duration must be longer than zero")
    if value > MAX_DURATION:
        raise DomainError("the duration must be at most 366 days")
    return value


def duration_label(value: timedelta | None) -> str:
    """The inverse of duration_parse: 28 hours -> '1d 4h' (whole minutes; seconds are never entered)."""
    if value is None:
        return ""
    minutes = int(value.total_seconds() // 60)
    parts = []
    for unit, size in (("d", 24 * 60), ("h", 60), ("m", 1)):
        if minutes >= size:
            parts.append(f"{minutes // size}{unit}")
            minutes %= size
    return " ".join(parts) or "0m"
