"""The generation benchmarks, the one table that `eval`, `score` and the CLI read. A task YAML picks one with
`benchmark: NAME`. A benchmark is a module here with

- `preflight(spec, settings)`: its data and judge checked before any model loads;
- `run(model, spec, settings, output) -> GenerationResult | None`: generate (resumably), then score; None on
  processes other than the main one;
- and, when images made elsewhere can be scored (`hermes-bench score NAME FOLDER`),
  `score(spec, config, settings, output) -> GenerationResult`.

This file imports nothing heavy: the CLI reads it without loading torch.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

BENCHMARKS = ("geneval", "dpg", "coco30k", "shapes_gap", "homologous_gap")
SCORABLE = ("geneval", "dpg", "coco30k")  # these have score(): `hermes-bench score NAME FOLDER`


def benchmark(name: str) -> ModuleType:
    """The runner module of a registered benchmark."""
    return import_module(f"hermes_bench.runners.{name}")
