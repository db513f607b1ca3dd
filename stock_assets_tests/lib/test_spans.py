from datetime import date

import pytest

from stock_assets.lib.spans import date_spans, merge_spans

D = date.fromordinal


@pytest.mark.parametrize(
    ("days", "bridge", "expected"),
    [
        ([], 1, []),
        ([5, 3, 4, 4], 1, [(3, 5)]),  # unsorted, a duplicate
        ([1, 2, 4], 1, [(1, 2), (4, 4)]),
        ([1, 2, 4], 2, [(1, 4)]),
        ([1, 8, 16], 7, [(1, 8), (16, 16)]),
    ],
)
def test_date_spans(days: list[int], bridge: int, expected: list[tuple[int, int]]) -> None:
    base = date(2024, 1, 1).toordinal()
    got = date_spans([D(base + d) for d in days], bridge)
    assert got == [(D(base + a), D(base + b)) for a, b in expected]


def test_merge_spans_unions_overlaps_and_keeps_gaps() -> None:
    a, b, c, d = (date(2024, 1, n) for n in (1, 3, 4, 10))
    assert merge_spans([(c, d), (a, b)]) == [(a, d)]  # 3 and 4 are adjacent
    assert merge_spans([(a, a), (d, d)], bridge_days=9) == [(a, d)]
    assert merge_spans([(a, a), (d, d)], bridge_days=2) == [(a, a), (d, d)]
