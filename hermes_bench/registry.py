"""The task registry: every YAML under tasks/ (and any --include-path) is a task or a group.

Understanding tasks are lm-eval task YAMLs (they also run under plain `lm_eval --include_path`); generation
tasks are ours (`kind: generation`), and so are homologous gap tasks (`kind: gap`) and image-quality tasks
(`kind: quality`: reported beside U and G, not part of them). All say what their headline is in `metadata`:
  headline: the metric that sums the task up; headline_max: its best value (the scale to [0, 1]);
  source: where the data comes from;
  columns: (optional) more of the task's metrics that leaderboards show beside the headline;
  digits: (optional) the decimals leaderboards print for them (default 3 for a [0, 1] headline, else 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path

import yaml
from lm_eval.tasks._yaml_loader import load_yaml

from hermes_bench.errors import HermesBenchError

BUILTIN_TASKS = Path(str(files("hermes_bench.tasks")))
IMAGE_KINDS = ("generation", "gap", "quality")  # the kinds whose runners generate images (runners/)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str  # "understanding" | "generation" | "gap" (both sides on homologous data) | "quality"
    path: Path
    headline: str
    headline_max: float
    source: str
    version: str
    members: tuple[str, ...] = ()  # a group's tasks and subgroups, all the way down
    leaves: tuple[str, ...] = ()  # a group's tasks that hold samples
    pooled: bool = False  # a group's headline pools its leaves' samples (weight_by_size), else averages leaves
    config: dict = field(default_factory=dict, compare=False, repr=False)


def _read(path: Path) -> dict:
    try:
        config = load_yaml(path, resolve_func=False)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise HermesBenchError(f"malformed task YAML {path}{where}: {problem}; fix or remove the file") from None
    except (ValueError, OSError) as err:
        raise HermesBenchError(f"malformed task YAML {path}: {err}; fix or remove the file") from None
    return config


def _spec(path: Path, config: dict) -> TaskSpec | None:
    name = config.get("group") or config.get("task")
    if not isinstance(name, str):
        return None  # a template meant for `include:`
    meta = config.get("metadata") or {}
    if not isinstance(meta, dict):
        raise HermesBenchError(f"malformed task YAML {path}: metadata of {name!r} must be a mapping")
    if config.get("kind") in IMAGE_KINDS:
        kind = config["kind"]
    elif "group" in config or "output_type" in config:
        kind = "understanding"
    else:
        raise HermesBenchError(f"malformed task YAML {path}: task {name!r} has neither lm-eval's output_type "
                               f"nor one of kind: {' / '.join(IMAGE_KINDS)}")
    if "headline" not in meta:
        raise HermesBenchError(f"malformed task YAML {path}: metadata.headline is missing for {name!r}; "
                               "name the metric that sums the task up")
    headline_max = meta.get("headline_max", 1.0)
    if isinstance(headline_max, bool) or not isinstance(headline_max, int | float) or not headline_max > 0:
        raise HermesBenchError(f"malformed task YAML {path}: metadata.headline_max of {name!r} must be a number "
                               f"above 0 (the headline's best value), not {headline_max!r}")
    aggregates = config.get("aggregate_metric_list", [])
    if not isinstance(aggregates, list) or not all(isinstance(m, dict) for m in aggregates):
        raise HermesBenchError(f"malformed task YAML {path}: aggregate_metric_list of {name!r} must be a list of "
                               "mappings")
    pooled = any(m.get("metric") == meta["headline"] and m.get("weight_by_size", True) for m in aggregates)
    return TaskSpec(name=name, kind=kind, path=path, headline=str(meta["headline"]),
                    headline_max=float(headline_max), source=str(meta.get("source", "")),
                    version=str(meta.get("version", "")), pooled=pooled, config=config)


class Registry:
    def __init__(self, include_paths: list[Path] | None = None) -> None:
        self.dirs = [BUILTIN_TASKS, *(include_paths or [])]
        self.tasks: dict[str, TaskSpec] = {}
        for folder in self.dirs:
            if not folder.is_dir():
                raise HermesBenchError(f"task folder {folder} does not exist: pass an existing --include-path")
            for path in sorted(folder.rglob("*.yaml")):
                spec = _spec(path, _read(path))
                if spec is not None:
                    self.tasks[spec.name] = spec
        for name, spec in self.tasks.items():
            if "group" in spec.config:
                members = self._members(name, ())
                leaves = tuple(m for m in members if "group" not in self.tasks[m].config)
                self.tasks[name] = replace(spec, members=members, leaves=leaves)

    def _members(self, group: str, path: tuple[str, ...]) -> tuple[str, ...]:
        spec = self.tasks[group]
        found: list[str] = []
        for child in spec.config.get("task", []):
            if not isinstance(child, str) or child not in self.tasks or child in path:
                raise HermesBenchError(f"malformed task YAML {spec.path}: group {group} lists {child!r}, "
                                       "which is not a registered task name (or forms a cycle)")
            found.append(child)
            if "group" in self.tasks[child].config:
                found.extend(self._members(child, (*path, group)))
        return tuple(found)

    def get(self, names: list[str]) -> list[TaskSpec]:
        unknown = [n for n in names if n not in self.tasks]
        if unknown:
            raise HermesBenchError(f"unknown task {', '.join(unknown)}: run `hermes-bench tasks` to list them, "
                                   f"or add a folder with --include-path")
        return [self.tasks[n] for n in names]
