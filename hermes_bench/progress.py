"""Progress bars, with one switch for all of them: `--no-progress` on any command, or HERMES_BENCH_NO_PROGRESS=1.
Bars go to stderr and show the rate and the time left where the length is known."""

from __future__ import annotations

import os
from collections.abc import Iterable

from tqdm import tqdm

ENV = "HERMES_BENCH_NO_PROGRESS"


def enabled() -> bool:
    return not os.environ.get(ENV)


def disable() -> None:
    os.environ[ENV] = "1"


def bar(iterable: Iterable | None = None, desc: str = "", total: int | None = None) -> tqdm:
    """A bar over `iterable` (or one updated by hand), hidden when progress is off."""
    return tqdm(iterable, desc=desc, total=total, disable=not enabled(), leave=False, dynamic_ncols=True)
