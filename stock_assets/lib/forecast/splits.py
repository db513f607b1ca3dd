"""Walk-forward splits over session indices with purge and embargo.

Rows are indexed by the session at which a forecast is issued; the label of horizon h at session i
is only known at session i + h. A fold is (train sessions, test sessions): its model is fitted once,
before the first test session, on rows whose labels were known `embargo` sessions before it:
    max(train) + h + embargo <= min(test)        (purge: h - 1 sessions, embargo: `embargo` more)
Test blocks are anchored at the start of the history (block k starts at min_train + gap + k x
test_size), so appending new sessions never moves an earlier fold; the last block may be shorter.
(scikit-learn's TimeSeriesSplit has the same `gap` but anchors its blocks at the end of the data,
which would re-cut every fold whenever a session is added.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Fold:
    number: int
    train: NDArray[np.intp]  # session indices, ascending
    test: NDArray[np.intp]


def walk_forward(
    n_sessions: int,
    *,
    horizon: int,
    test_size: int,
    min_train: int,
    embargo: int = 0,
    window: Literal["expanding", "rolling"] = "expanding",
    max_train: int | None = None,
) -> list[Fold]:
    """Consecutive test blocks of `test_size` sessions after `min_train` training sessions."""
    if horizon < 1 or test_size < 1 or min_train < 1 or embargo < 0:
        raise ValueError("horizon, test_size and min_train must be >= 1, embargo >= 0")
    if window == "rolling" and (max_train is None or max_train < 1):
        raise ValueError("a rolling window needs max_train >= 1")
    gap = horizon - 1 + embargo
    folds: list[Fold] = []
    start = min_train + gap
    while start < n_sessions:
        train_end = start - gap  # exclusive
        train_start = max(0, train_end - max_train) if window == "rolling" and max_train else 0
        folds.append(
            Fold(
                number=len(folds),
                train=np.arange(train_start, train_end, dtype=np.intp),
                test=np.arange(start, min(start + test_size, n_sessions), dtype=np.intp),
            )
        )
        start += test_size
    return folds
