"""The ingest ledger (ingest.kafka_offsets) as the source of truth for what is loaded.

Every committed load records its exact offset ranges; an offset inside a recorded range was either
loaded into market.raw_ticks or dead-lettered (row_count < size). So the offsets of a partition's
retained log [low, high) that no ledger range covers are exactly the pending work: new offsets past
the last load, and gaps left by a failed or never-run range. The sensor requests them, the
Pipeline page and the gap check count them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import psycopg

Span = tuple[int, int]  # [start, end) offsets


def merge(spans: Iterable[Span]) -> list[Span]:
    """Union of half-open spans, sorted; touching spans ([a,b) and [b,c)) merge."""
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def uncovered(covered: Iterable[Span], low: int, high: int) -> list[Span]:
    """The parts of [low, high) that no span in `covered` contains, in offset order."""
    result: list[Span] = []
    position = low
    for start, end in merge(covered):
        if end <= position:
            continue
        if start >= high:
            break
        if start > position:
            result.append((position, start))
        position = max(position, end)
    if position < high:
        result.append((position, high))
    return result


def pending(
    covered: Mapping[int, Iterable[Span]], watermarks: Mapping[int, tuple[int, int]]
) -> dict[int, list[Span]]:
    """partition -> offsets of the retained log [low, high) not covered by the ledger."""
    return {p: uncovered(covered.get(p, ()), low, high) for p, (low, high) in watermarks.items()}


def coverage(conn: psycopg.Connection, topic: str) -> dict[int, list[Span]]:
    """partition -> the merged ranges the ledger records for `topic`."""
    rows = conn.execute(
        "SELECT partition, start_offset, end_offset FROM ingest.kafka_offsets"
        " WHERE topic = %s ORDER BY partition, start_offset",
        (topic,),
    ).fetchall()
    spans: dict[int, list[Span]] = {}
    for partition, start, end in rows:
        spans.setdefault(int(partition), []).append((int(start), int(end)))
    return {p: merge(s) for p, s in spans.items()}
