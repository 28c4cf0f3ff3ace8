"""Several processes (torchrun / accelerate launch): batch b of a loop runs on process b % world size, and every
process ends with the merged results, the same as one process alone computes (batches are seeded by their start).
The main process alone writes files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object


def my_batches(n: int, batch_size: int) -> list[int]:
    """The starts of the batches of range(n) that this process runs."""
    state = PartialState()
    return [start for b, start in enumerate(range(0, n, batch_size)) if b % state.num_processes == state.process_index]


def merged(mine: dict, keys: Iterable) -> list:
    """Every process' results (each a dict over its own batches), in the order of `keys`, on every process."""
    everything = dict(mine)
    if PartialState().num_processes > 1:
        for part in gather_object([mine]):
            everything.update(part)
    return [everything[k] for k in keys]


def from_main(value: Any) -> Any:
    """The main process' value, on every process."""
    if PartialState().num_processes == 1:
        return value
    return broadcast_object_list([value])[0]


def is_main() -> bool:
    return PartialState().is_main_process


def wait() -> None:
    PartialState().wait_for_everyone()
