"""From scored tasks to a run: headlines with bootstrap CIs, U, G and gap, and results.json.

U is the mean of the understanding headlines, G of the generation headlines (each scaled to [0, 1]) and
gap = U - G. Their intervals come from one bootstrap: draw b resamples every task's units, and U, G and gap
are computed from the same draw.
"""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from hermes_bench import __version__
from hermes_bench.registry import TaskSpec
from hermes_bench.runners.generation import GenerationResult
from hermes_bench.scoring.stats import CONFIDENCE, N_BOOTSTRAP, bootstrap_distribution, interval
from hermes_bench.storage import RESULTS_FILE, atomic_write_json, atomic_write_jsonl

PACKAGES = ("hermes-bench", "torch", "transformers", "accelerate", "lm_eval", "datasets", "numpy")


@dataclass
class Part:
    """Items whose statistic is (part of) a headline; a group's headline is the mean over its parts."""

    items: list
    statistic: Callable[[list], float]
    unit: Callable[[dict], object] | None = None


@dataclass
class Scored:
    spec: TaskSpec
    metrics: dict[str, dict[str, float]]
    parts: list[Part]
    details: dict[str, float] = field(default_factory=dict)  # breakdown columns for the leaderboard

    def headline(self) -> float:
        return float(np.mean([p.statistic(p.items) for p in self.parts])) / self.spec.headline_max

    def distribution(self, rng: np.random.Generator) -> np.ndarray:
        dists = [bootstrap_distribution(p.items, p.statistic, rng, N_BOOTSTRAP, p.unit) for p in self.parts]
        return np.mean(dists, axis=0) / self.spec.headline_max


def scored_generation(spec: TaskSpec, result: GenerationResult, output: Path, **extra: float) -> Scored:
    atomic_write_jsonl(output / f"samples_{spec.name}.jsonl", result.records)
    details = {k: v for k, v in result.metrics.items() if k != spec.headline and not k.startswith("L2/")}
    return Scored(spec, {spec.name: {**result.metrics, **extra}},
                  [Part(result.records, result.statistic, lambda r, k=result.unit: r[k])], details)


def summarize(scored: list[Scored], seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    headlines, dists = {}, {}
    for s in scored:
        dists[s.spec.name] = s.distribution(rng)
        value = s.headline()
        headlines[s.spec.name] = {"kind": s.spec.kind, "metric": s.spec.headline,
                                  "value": value * s.spec.headline_max, "max": s.spec.headline_max, "normalized": value,
                                  "ci": [x * s.spec.headline_max for x in interval(dists[s.spec.name])],
                                  "details": s.details}
    summary: dict = {"confidence": CONFIDENCE, "n_bootstrap": N_BOOTSTRAP}
    sides = {}
    for side, kind in (("U", "understanding"), ("G", "generation")):
        members = [s for s in scored if s.spec.kind == kind]
        if members:
            sides[side] = (float(np.mean([s.headline() for s in members])),
                           np.mean([dists[s.spec.name] for s in members], axis=0))
            summary[side] = {"value": sides[side][0], "ci": list(interval(sides[side][1]))}
    if len(sides) == 2:
        summary["gap"] = {"value": sides["U"][0] - sides["G"][0], "ci": list(interval(sides["U"][1] - sides["G"][1]))}
    return summary, headlines


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _versions() -> dict[str, str | None]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def write_run(output: Path, scored: list[Scored], model_info: dict, provenance: dict, seed: int, start: float,
               stages: dict[str, float], model_seconds: float) -> dict:
    """Headlines and U/G/gap with CIs, then results.json, written atomically."""
    summary, headlines = summarize(scored, seed)
    total = time.perf_counter() - start
    stages["bootstrap_s"] = total - sum(stages.values())
    run = {
        "hermes_bench_version": __version__,
        "date": datetime.fromtimestamp(time.time() - total, timezone.utc).isoformat(timespec="seconds"),  # started
        "model": model_info,
        "summary": summary,
        "headlines": headlines,
        "results": {name: m for s in scored for name, m in s.metrics.items()},
        "configs": {s.spec.name: s.spec.config for s in scored},
        "versions": {s.spec.name: s.spec.version for s in scored},
        "provenance": {**provenance, "packages": _versions(), "git_commit": _git_commit(),
                       "python": platform.python_version(),
                       "timings": {"total_s": total, "model_s": model_seconds, **stages}},
    }
    atomic_write_json(output / RESULTS_FILE, run)
    run["output"] = str(output)
    return run
