"""Several processes (torchrun / accelerate launch): batch b of a loop runs on process b % world size, and every
process ends with the merged results, the same as one process alone computes (batches are seeded by their start).
The main process alone writes files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object

T = TypeVar("T")


def start(device: str) -> None:
    """The first touch of accelerate's state: on CPU it needs telling, or torchrun's processes each run alone."""
    PartialState(cpu=device == "cpu")


def my_share(batches: list[T]) -> list[tuple[int, T]]:
    """The (index, batch) pairs this process runs: batch b runs on process b % world size."""
    state = PartialState()
    return [(b, batch) for b, batch in enumerate(batches) if b % state.num_processes == state.process_index]


def my_batches(n: int, batch_size: int) -> list[int]:
    """The starts of the batches of range(n) that this process runs."""
    return [begin for _, begin in my_share(list(range(0, n, batch_size)))]


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
