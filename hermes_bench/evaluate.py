"""The eval flow: tasks -> runners -> per-sample outputs -> headlines with bootstrap CIs -> results.json.

U is the mean of the understanding headlines, G of the generation headlines (each scaled to [0, 1]) and
gap = U - G. Their intervals come from one bootstrap: draw b resamples every task's units, and U, G and gap
are computed from the same draw.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import transformers
from accelerate import PartialState

from hermes_bench import __version__
from hermes_bench.detectors import load_detector
from hermes_bench.errors import HermesBenchError
from hermes_bench.hub import DATA_DIR_ENV
from hermes_bench.models import load_model, resolve_device
from hermes_bench.models.base import UnifiedModel
from hermes_bench.registry import Registry, TaskSpec
from hermes_bench.results import RESULTS_FILE, SampleCache, atomic_write_json, atomic_write_jsonl
from hermes_bench.runners import dpg as dpg_runner
from hermes_bench.runners import geneval as geneval_runner
from hermes_bench.runners.generation import GenerationResult, GenerationSettings
from hermes_bench.runners.understanding import run_understanding
from hermes_bench.scoring import dpg
from hermes_bench.scoring.stats import CONFIDENCE, N_BOOTSTRAP, bootstrap_distribution, interval

DEFAULT_TASKS = ("shapes_pope", "shapes_mme", "shapes_geneval")
GENERATION_RUNNERS = {"geneval": geneval_runner.run, "dpg": dpg_runner.run}
PACKAGES = ("hermes-bench", "torch", "transformers", "accelerate", "lm_eval", "datasets", "numpy")


@dataclass
class EvalConfig:
    model: str | None = None  # None: the embedded default
    tasks: tuple[str, ...] = DEFAULT_TASKS
    include_paths: tuple[Path, ...] = ()
    output: Path | None = None  # None: results/runs/<model>
    data_dir: Path | None = None  # a local mirror of the hub datasets
    batch_size: int = 32
    limit: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    guidance_scale: float | None = None  # None: the model's default
    detector_model: str | None = None  # GenEval: Mask2Former id or folder instead of the task's
    clip_model: str | None = None  # GenEval: CLIP id or folder instead of the task's
    judge: str | None = None  # DPG-Bench: the VQA judge instead of the task's
    progress: bool = True


@dataclass
class _Part:
    """Items whose statistic is (part of) a headline; a group's headline is the mean over its parts."""

    items: list
    statistic: Callable[[list], float]
    unit: Callable[[dict], object] | None = None


@dataclass
class _Scored:
    spec: TaskSpec
    metrics: dict[str, dict[str, float]]
    parts: list[_Part]
    details: dict[str, float] = field(default_factory=dict)  # breakdown columns for the leaderboard

    def headline(self) -> float:
        return float(np.mean([p.statistic(p.items) for p in self.parts])) / self.spec.headline_max

    def distribution(self, rng: np.random.Generator) -> np.ndarray:
        dists = [bootstrap_distribution(p.items, p.statistic, rng, N_BOOTSTRAP, p.unit) for p in self.parts]
        return np.mean(dists, axis=0) / self.spec.headline_max


def default_output(model_name: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_name.split(" (")[0]).strip("-")
    return Path("results") / "runs" / slug


def _clean(metrics: dict) -> dict[str, float | None]:
    """lm-eval's 'f1,none' keys as 'f1', without aliases and stderr placeholders; NaN (a subtask with no
    samples) as None, so results.json stays valid JSON."""
    return {k.split(",")[0]: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in metrics.items() if "," in k and "_stderr" not in k}


def _json_safe_doc(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if isinstance(v, str | int | float | bool | type(None) | list | dict)}


def _understanding(model: UnifiedModel, specs: list[TaskSpec], cfg: EvalConfig, output: Path,
                   stats: dict) -> list[_Scored]:
    names = [s.name for s in specs]
    results, tasks, computed = run_understanding(model, names, [s.path.parent for s in specs], output,
                                                 cfg.batch_size, cfg.limit, cfg.progress)
    stats["understanding_computed"] = computed
    if not results:  # lm-eval gathers everything on process 0
        return []
    scored = []
    for spec in specs:
        unit_key = spec.config.get("metadata", {}).get("bootstrap_unit")
        unit = (lambda x, k=unit_key: x[k]) if unit_key else None
        metrics = {name: _clean(results["results"][name]) for name in (spec.name, *spec.members)}
        parts = []
        for leaf in spec.leaves or (spec.name,):
            samples = results["samples"][leaf]
            atomic_write_jsonl(output / f"samples_{leaf}.jsonl", (
                {"doc_id": s["doc_id"], "doc": _json_safe_doc(s["doc"]), "target": s["target"],
                 "prompt": s["arguments"][0][0], "response": s["resps"][0][0],
                 "filtered": s["filtered_resps"][0], **{m: s[m] for m in metrics[leaf] if m in s}}
                for s in samples))
            parts.append(_Part([s[spec.headline] for s in samples], tasks[leaf].aggregation()[spec.headline], unit))
        if spec.pooled:  # instance-weighted: one statistic over every leaf's samples
            parts = [_Part([x for p in parts for x in p.items], parts[0].statistic, unit)]
        details = {c: metrics[c][spec.headline] for c in spec.config.get("task", []) if "group" in spec.config}
        details.update({m: metrics[spec.name][m] for m in spec.config.get("metadata", {}).get("report", [])})
        scored.append(_Scored(spec, metrics, parts, details))
    return scored


def _scored_generation(spec: TaskSpec, result: GenerationResult, output: Path, **extra: float) -> _Scored:
    atomic_write_jsonl(output / f"samples_{spec.name}.jsonl", result.records)
    details = {k: v for k, v in result.metrics.items() if k != spec.headline and not k.startswith("L2/")}
    return _Scored(spec, {spec.name: {**result.metrics, **extra}},
                   [_Part(result.records, result.statistic, lambda r, k=result.unit: r[k])], details)


def _generation(model: UnifiedModel, spec: TaskSpec, cfg: EvalConfig, output: Path, stats: dict) -> _Scored:
    benchmark = spec.config.get("benchmark", "geneval")
    if benchmark not in GENERATION_RUNNERS:
        raise HermesBenchError(f"task {spec.name} ({spec.path}): benchmark must be one of "
                               f"{', '.join(GENERATION_RUNNERS)}, not {benchmark!r}")
    guidance = cfg.guidance_scale if cfg.guidance_scale is not None else model.default_guidance_scale
    settings = GenerationSettings(cfg.batch_size, cfg.limit, cfg.seed, guidance, resolve_device(cfg.device),
                                  cfg.progress, cfg.detector_model, cfg.clip_model, cfg.judge)
    result = GENERATION_RUNNERS[benchmark](model, spec, settings, output)
    stats[f"{spec.name}_prompts_computed"] = result.computed
    return _scored_generation(spec, result, output, guidance_scale=guidance)


def _summary(scored: list[_Scored], seed: int) -> tuple[dict, dict]:
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


def run_eval(cfg: EvalConfig) -> dict:
    """Run the tasks on the model, write results.json and per-sample files into the output folder.
    Returns the run; {} on processes other than the main one."""
    if cfg.batch_size < 1:
        raise HermesBenchError(f"--batch-size must be at least 1, not {cfg.batch_size}")
    specs = Registry(list(cfg.include_paths)).get(list(cfg.tasks))
    if cfg.data_dir is not None:
        if not cfg.data_dir.is_dir():
            raise HermesBenchError(f"--data-dir {cfg.data_dir} is not a folder: pass a mirror laid out as "
                                   "<dir>/<org>/<dataset> (see README)")
        os.environ[DATA_DIR_ENV] = str(cfg.data_dir.resolve())  # read by the tasks' dataset hooks
    model = load_model(cfg.model, cfg.device, cfg.dtype)
    output = cfg.output or default_output(model.name)
    transformers.set_seed(cfg.seed)
    stats: dict = {}
    stages: dict[str, float] = {}
    start = time.perf_counter()
    understanding = [s for s in specs if s.kind == "understanding"]
    scored = _understanding(model, understanding, cfg, output, stats) if understanding else []
    stages["understanding_s"] = time.perf_counter() - start
    scored += [_generation(model, s, cfg, output, stats) for s in specs if s.kind == "generation"]
    stages["generation_s"] = time.perf_counter() - start - stages["understanding_s"]
    if not PartialState().is_main_process:
        return {}
    model_info = {"name": model.name, "path": str(model.path) if model.path else None,
                  "weights_sha256": model.weights_sha256(), "family": type(model).__name__}
    provenance = {"seed": cfg.seed, "batch_size": cfg.batch_size, "limit": cfg.limit, "device": cfg.device,
                  "dtype": cfg.dtype, "tasks": list(cfg.tasks), "samples_computed": stats}
    return _write_run(output, scored, model_info, provenance, cfg.seed, start, stages, model.model_seconds)


def _write_run(output: Path, scored: list[_Scored], model_info: dict, provenance: dict, seed: int, start: float,
               stages: dict[str, float], model_seconds: float) -> dict:
    """Headlines and U/G/gap with CIs, then results.json, written atomically."""
    summary, headlines = _summary(scored, seed)
    total = time.perf_counter() - start
    stages["bootstrap_s"] = total - sum(stages.values())
    run = {
        "hermes_bench_version": __version__,
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


@dataclass
class ScoreConfig:
    """Scoring images another model made, in a benchmark's reference layout."""

    benchmark: str  # "geneval" | "dpg"
    folder: Path
    output: Path | None = None  # None: <folder>/hermes-bench
    device: str = "auto"
    seed: int = 0
    batch_size: int = 32
    detector_model: str | None = None
    clip_model: str | None = None
    judge: str | None = None
    prompts_dir: Path | None = None  # DPG-Bench
    csv: Path | None = None  # DPG-Bench
    compat: bool = False  # DPG-Bench: the reference's category quirk
    progress: bool = True


def score_images(cfg: ScoreConfig) -> dict:
    """The task's scorer on a folder of images, written as a run with the same results schema."""
    registry = Registry()
    spec = registry.get([cfg.benchmark])[0]
    output = cfg.output or cfg.folder / "hermes-bench"
    settings = GenerationSettings(cfg.batch_size, None, cfg.seed, 0.0, resolve_device(cfg.device), cfg.progress,
                                  cfg.detector_model, cfg.clip_model, cfg.judge)
    start = time.perf_counter()
    if cfg.benchmark == "geneval":
        setting = settings.detector_setting(spec.config.get("detector", "mask2former"))
        detector = load_detector(setting, settings.device)
        records = geneval_runner.score_folder(cfg.folder, detector, setting,
                                              SampleCache(output, f"scores.{spec.name}"), cfg.progress)
        result = GenerationResult(geneval_runner.metrics(records), records, 0, geneval_runner.overall,
                                  "prompt_index")
    else:
        if cfg.prompts_dir is None or cfg.csv is None:
            raise HermesBenchError("scoring DPG-Bench images needs --prompts DIR and --csv FILE of the benchmark")
        prompts, questions = dpg_runner.load_prompts(cfg.prompts_dir, cfg.csv)
        judge = settings.load_judge(spec.config.get("judge"))
        records = dpg_runner.score_folder(cfg.folder, prompts, questions, judge,
                                          SampleCache(output, f"scores.{spec.name}"), cfg.batch_size, cfg.progress)
        result = GenerationResult(dpg_runner.metrics(records, cfg.compat), records, 0, dpg.dpg_score, "item_id")
    scored = [_scored_generation(spec, result, output)]
    model_info = {"name": f"images in {cfg.folder}", "path": str(cfg.folder), "weights_sha256": None,
                  "family": None}
    provenance = {"seed": cfg.seed, "scored_folder": str(cfg.folder), "tasks": [spec.name]}
    return _write_run(output, scored, model_info, provenance, cfg.seed, start,
                      {"scoring_s": time.perf_counter() - start}, 0.0)
