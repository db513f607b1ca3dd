"""The ledger's coverage arithmetic (pure) and its query against the real warehouse."""

import psycopg
import pytest

from stock_assets.lib import ledger


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([], []),
        ([(5, 5)], []),
        ([(0, 10), (10, 20)], [(0, 20)]),
        ([(10, 20), (0, 5), (3, 12)], [(0, 20)]),
        ([(0, 5), (6, 9)], [(0, 5), (6, 9)]),
    ],
)
def test_merge(spans: list[ledger.Span], expected: list[ledger.Span]) -> None:
    assert ledger.merge(spans) == expected


@pytest.mark.parametrize(
    ("covered", "low", "high", "expected"),
    [
        ([], 0, 100, [(0, 100)]),
        ([(0, 100)], 0, 100, []),
        ([(0, 40)], 0, 100, [(40, 100)]),
        ([(0, 40), (60, 80)], 0, 100, [(40, 60), (80, 100)]),
        ([(0, 40), (60, 80)], 50, 70, [(50, 60)]),  # retention moved low past the first gap
        ([(120, 130)], 0, 100, [(0, 100)]),
        ([(0, 10)], 10, 10, []),  # empty log
    ],
)
def test_uncovered(
    covered: list[ledger.Span], low: int, high: int, expected: list[ledger.Span]
) -> None:
    assert ledger.uncovered(covered, low, high) == expected


def test_coverage_reads_the_ledger(conn: psycopg.Connection) -> None:
    topic = "test.ledger.coverage"
    with conn.transaction():
        conn.execute("DELETE FROM ingest.kafka_offsets WHERE topic = %s", (topic,))
        for partition, start, end in [(0, 0, 10), (0, 10, 25), (0, 40, 50), (2, 5, 9)]:
            conn.execute(
                "INSERT INTO ingest.kafka_offsets"
                " (topic, partition, start_offset, end_offset, row_count)"
                " VALUES (%s, %s, %s, %s, 0)",
                (topic, partition, start, end),
            )
    covered = ledger.coverage(conn, topic)
    assert covered == {0: [(0, 25), (40, 50)], 2: [(5, 9)]}
    assert ledger.pending(covered, {0: (0, 60), 1: (0, 3), 2: (0, 9)}) == {
        0: [(25, 40), (50, 60)],
        1: [(0, 3)],
        2: [(0, 5)],
    }


@pytest.mark.parametrize(
    ("pending", "budget", "expected"),
    [
        ({}, 100, {}),
        ({0: [], 1: [(7, 9)]}, 100, {1: (7, 9)}),
        # a gap comes first; the tail waits for the next load (one range per partition)
        ({0: [(10, 20), (30, 50)], 1: [(0, 5)]}, 1000, {0: (10, 20), 1: (0, 5)}),
        # the budget is shared fairly: small spans whole, the rest split
        ({0: [(0, 100)], 1: [(0, 10)]}, 50, {0: (0, 40), 1: (0, 10)}),
        ({0: [(0, 100)], 1: [(0, 100)]}, 50, {0: (0, 25), 1: (0, 25)}),
    ],
)
def test_next_ranges(
    pending: dict[int, list[ledger.Span]], budget: int, expected: dict[int, ledger.Span]
) -> None:
    assert ledger.next_ranges(pending, budget) == expected
