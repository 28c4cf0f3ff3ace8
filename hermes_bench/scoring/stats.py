"""Percentile bootstrap over samples: a metric's sampling distribution and its confidence interval.

Resampling is by unit (a question, a prompt, or an MME image with both of its questions) so that metrics
defined over groups of samples keep their groups whole.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from itertools import chain
from typing import Any

import numpy as np

N_BOOTSTRAP = 1000
CONFIDENCE = 0.95


def bootstrap_distribution(items: Sequence[Any], statistic: Callable[[list], float],
                           rng: np.random.Generator, n: int = N_BOOTSTRAP,
                           unit: Callable[[Any], Hashable] | None = None) -> np.ndarray:
    """`statistic` on n resamples (with replacement) of the units of `items`."""
    groups: dict[Hashable, list] = {}
    for index, x in enumerate(items):
        groups.setdefault(index if unit is None else unit(x), []).append(x)
    units = np.empty(len(groups), dtype=object)  # fancy indexing picks whole units at C speed
    units[:] = list(groups.values())
    draws = rng.integers(0, len(units), size=(n, len(units)))
    return np.array([statistic(list(chain.from_iterable(units[row]))) for row in draws])


def interval(distribution: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.nanpercentile(distribution, [tail, 100 - tail])
    return float(lo), float(hi)
