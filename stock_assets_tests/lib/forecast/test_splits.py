"""Walk-forward splits: purge + embargo never overlap, folds are stable when sessions are added."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stock_assets.lib.forecast.splits import walk_forward


@pytest.mark.parametrize(
    ("n", "horizon", "test_size", "min_train", "embargo", "window", "max_train"),
    [
        (*case, w, m)
        for case in itertools.product((300, 1001), (1, 5, 20), (1, 21, 63), (50, 252), (0, 5))
        for w, m in (("expanding", None), ("rolling", 100))
    ],
)
def test_folds_respect_purge_and_embargo(
    n: int,
    horizon: int,
    test_size: int,
    min_train: int,
    embargo: int,
    window: str,
    max_train: int | None,
) -> None:
    folds = walk_forward(
        n,
        horizon=horizon,
        test_size=test_size,
        min_train=min_train,
        embargo=embargo,
        window=window,  # type: ignore[arg-type]
        max_train=max_train,
    )
    assert folds, "every case has room for at least one fold"
    tested = np.concatenate([f.test for f in folds])
    # test blocks are consecutive, disjoint and reach the last session
    assert np.array_equal(tested, np.arange(tested[0], n))
    assert tested[0] == min_train + horizon - 1 + embargo
    for fold in folds:
        assert fold.train.size > 0
        # a training label (known at train index + horizon) is known `embargo` sessions early
        assert fold.train.max() + horizon + embargo <= fold.test.min()
        # and the gap is exactly the purge + embargo, not more
        assert fold.test.min() - fold.train.max() - 1 == horizon - 1 + embargo
        if window == "rolling":
            assert fold.train.size <= 100
        else:
            assert fold.train[0] == 0


def test_appending_sessions_keeps_earlier_folds() -> None:
    short = walk_forward(700, horizon=5, test_size=63, min_train=252, embargo=5)
    long = walk_forward(900, horizon=5, test_size=63, min_train=252, embargo=5)
    for a, b in zip(short[:-1], long, strict=False):
        assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    # the last, partial block of the short history is a prefix of the same block later
    last = short[-1]
    assert np.array_equal(long[last.number].test[: last.test.size], last.test)


def test_too_short_history_has_no_fold() -> None:
    assert walk_forward(100, horizon=1, test_size=10, min_train=100) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"horizon": 0},
        {"test_size": 0},
        {"embargo": -1},
        {"window": "rolling", "max_train": None},
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"horizon": 1, "test_size": 5, "min_train": 10, "embargo": 0}
    with pytest.raises(ValueError):
        walk_forward(100, **(args | kwargs))  # type: ignore[arg-type]
