"""Walk-forward splits over session dates with purge and embargo (scikit-learn TimeSeriesSplit).

Rows are indexed by the session at which a forecast is issued; the label of horizon h at session i
is only known at session i + h. A fold is (train sessions, test sessions): every test forecast is
issued after the model was fitted, and a training label must be known `embargo` sessions before
the first test session: max(train) + h + embargo <= min(test). TimeSeriesSplit's `gap` (sessions
dropped from the end of each training set) = h - 1 + embargo does exactly that.
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
    """Consecutive test blocks of `test_size` sessions covering the tail after `min_train`."""
    from sklearn.model_selection import TimeSeriesSplit

    if horizon < 1 or test_size < 1 or min_train < 1 or embargo < 0:
        raise ValueError("horizon, test_size and min_train must be >= 1, embargo >= 0")
    if window == "rolling" and max_train is None:
        raise ValueError("a rolling window needs max_train")
    gap = horizon - 1 + embargo
    n_splits = (n_sessions - min_train - gap) // test_size
    if n_splits < 1:
        return []
    splitter = TimeSeriesSplit(
        n_splits=n_splits,
        test_size=test_size,
        gap=gap,
        max_train_size=max_train if window == "rolling" else None,
    )
    index = np.arange(n_sessions)
    return [
        Fold(number=k, train=train, test=test)
        for k, (train, test) in enumerate(splitter.split(index))
    ]
