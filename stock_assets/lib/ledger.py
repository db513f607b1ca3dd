"""The ingest ledger (ingest.kafka_offsets) as the source of truth for what is loaded.

Every committed load records its exact offset ranges; an offset inside a recorded range was either
loaded into market.raw_ticks or dead-lettered (row_count < size). So the offsets of a partition's
retained log [low, high) that no ledger range covers are exactly the pending work: new offsets past
the last load, and gaps left by a failed or never-run range. The sensor requests them, the
Pipeline page and the gap check count them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

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


def next_ranges(pending_spans: Mapping[int, Sequence[Span]], max_messages: int) -> dict[int, Span]:
    """partition -> the one span the next load takes: each partition's FIRST pending span.

    A gap left by a failed load comes before the tail, so it is retried first (the tail follows
    on the next run; a load takes one range per partition). Normally pending is one tail per
    partition and this is everything up to the end offsets. `max_messages` bounds one run's
    transaction and is shared fairly (water-filling: small spans whole, the rest split evenly).
    """
    firsts = sorted(
        ((spans[0][1] - spans[0][0], p, spans[0]) for p, spans in pending_spans.items() if spans),
    )
    budget, result = max_messages, {}
    for i, (size, partition, (start, _end)) in enumerate(firsts):
        take = min(size, budget // (len(firsts) - i))
        if take > 0:
            result[partition] = (start, start + take)
            budget -= take
    return dict(sorted(result.items()))
