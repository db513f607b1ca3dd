"""Inclusive date spans: grouping days (or merging spans) into the ranges runs are launched for."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

DateSpan = tuple[date, date]  # inclusive


def merge_spans(spans: Iterable[DateSpan], bridge_days: int = 1) -> list[DateSpan]:
    """Union of inclusive spans, sorted; spans at most `bridge_days` apart are merged (1: only
    adjacent or overlapping ones)."""
    merged: list[DateSpan] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + timedelta(days=bridge_days):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def date_spans(days: Iterable[date], bridge_days: int = 1) -> list[DateSpan]:
    """Days as sorted inclusive spans, bridging gaps of up to `bridge_days` (1: consecutive days
    only; 7 bridges weekends and holidays)."""
    return merge_spans(((d, d) for d in days), bridge_days)
