"""The eval flow: tasks -> runners -> per-sample outputs -> headlines with bootstrap CIs -> results.json."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import transformers

from hermes_bench import hub, processes
from hermes_bench.configs import EvalConfig
from hermes_bench.errors import HermesBenchError
from hermes_bench.hub import DATA_DIR_ENV
from hermes_bench.models import EMBEDDED_NAME, check_source, load_model, resolve_device, resolve_dtype
from hermes_bench.models.base import UnifiedModel
from hermes_bench.registry import IMAGE_KINDS, Registry, TaskSpec
from hermes_bench.report import lm_eval_results as lm_eval_format
from hermes_bench.runners import BENCHMARKS, benchmark
from hermes_bench.runners.generation import GenerationSettings
from hermes_bench.runners.understanding import load_tasks, run_understanding
from hermes_bench.storage import atomic_write_jsonl, check_writable, remove_partial_writes
from hermes_bench.summary import Part, Scored, scored_generation, write_run


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


def _understanding(model: UnifiedModel, specs: list[TaskSpec], task_dict: dict, cfg: EvalConfig, output: Path,
                   stats: dict) -> tuple[list[Scored], dict]:
    """The scored tasks, and lm-eval's own results (for its results format); nothing on processes other than 0."""
    unit_fields = {leaf: s.config["metadata"]["bootstrap_unit"] for s in specs for leaf in s.leaves or (s.name,)
                   if s.config.get("metadata", {}).get("bootstrap_unit")}
    results, tasks, computed = run_understanding(model, task_dict, output, cfg.batch_size, cfg.limit, cfg.progress,
                                                 unit_fields)
    stats["understanding_computed"] = computed
    if not results:  # lm-eval gathers everything on process 0
        return [], {}
    scored = []
    for spec in specs:
        unit_key = spec.config.get("metadata", {}).get("bootstrap_unit")
        unit = (lambda x, k=unit_key: x[k]) if unit_key else None
        metrics = {name: _clean(results["results"][name]) for name in (spec.name, *spec.members)}
        parts = []
        for leaf in spec.leaves or (spec.name,):
            samples = sorted(results["samples"][leaf], key=lambda s: s["doc_id"])  # same order however sharded
            atomic_write_jsonl(output / f"samples_{leaf}.jsonl", (
                {"doc_id": s["doc_id"], "doc": _json_safe_doc(s["doc"]), "target": s["target"],
                 "prompt": s["arguments"][0][0], "response": s["resps"][0][0],
                 "filtered": s["filtered_resps"][0], **{m: s[m] for m in metrics[leaf] if m in s}}
                for s in samples))
            parts.append(Part([s[spec.headline] for s in samples], tasks[leaf].aggregation()[spec.headline], unit))
        if spec.pooled:  # instance-weighted: one statistic over every leaf's samples
            parts = [Part([x for p in parts for x in p.items], parts[0].statistic, unit)]
        details = {c: metrics[c][spec.headline] for c in spec.config.get("task", []) if "group" in spec.config}
        details.update({m: metrics[spec.name][m] for m in spec.config.get("metadata", {}).get("report", [])})
        scored.append(Scored(spec, metrics, parts, details))
    return scored, results


def _settings(cfg: EvalConfig, guidance: float) -> GenerationSettings:
    return GenerationSettings(cfg.batch_size, cfg.limit, cfg.seed, guidance, resolve_device(cfg.device),
                              cfg.progress, cfg.detector_model, cfg.clip_model, cfg.judge, cfg.fid_features)


def _benchmark(spec: TaskSpec):
    name = spec.config.get("benchmark", "geneval")
    if name not in BENCHMARKS:
        raise HermesBenchError(f"task {spec.name} ({spec.path}): benchmark must be one of {', '.join(BENCHMARKS)}, "
                               f"not {name!r}")
    return benchmark(name)


def _preflight(specs: list[TaskSpec], cfg: EvalConfig) -> None:
    """What each generation task needs, checked before any model work: its benchmark, its image count, its data
    and the judge it will ask."""
    settings = _settings(cfg, 0.0)
    for spec in specs:
        runner = _benchmark(spec)
        settings.images_per_prompt(spec)
        runner.preflight(spec, settings)


def _generation(model: UnifiedModel, spec: TaskSpec, cfg: EvalConfig, output: Path, stats: dict) -> Scored | None:
    guidance = cfg.guidance_scale if cfg.guidance_scale is not None else model.default_guidance_scale
    result = _benchmark(spec).run(model, spec, _settings(cfg, guidance), output)
    if result is None:  # not the main process: it has done its share of the images
        return None
    stats[f"{spec.name}_prompts_computed"] = result.computed  # by this process
    return scored_generation(spec, result, output, guidance_scale=guidance)


def run_eval(cfg: EvalConfig) -> dict:
    """Run the tasks on the model; write results.json, the per-sample files and lm-eval's results file into the
    output folder (rerunning into it resumes).

    Args:
        cfg: the model, tasks and how to run them (see configs.EvalConfig).

    Returns:
        The run as results.json holds it (headlines with bootstrap intervals, U, G, gap, provenance); {} on
        processes other than the main one.
    """
    return evaluate(cfg)[0]


def evaluate(cfg: EvalConfig) -> tuple[dict, list[Scored]]:
    """As run_eval, and the scored tasks themselves (per-sample items and statistics, for paired comparisons)."""
    if cfg.batch_size < 1:
        raise HermesBenchError(f"--batch-size must be at least 1, not {cfg.batch_size}")
    if not 0 <= cfg.seed < 2**32:
        raise HermesBenchError(f"--seed must be between 0 and 2**32 - 1, not {cfg.seed}")
    if cfg.guidance_scale is not None and not (math.isfinite(cfg.guidance_scale) and cfg.guidance_scale >= 0):
        raise HermesBenchError(f"--guidance-scale must be a finite number of 0 or more, not {cfg.guidance_scale}")
    specs = Registry(list(cfg.include_paths)).get(list(cfg.tasks))
    hub.SOURCES.clear()  # filled as this run's datasets load
    if cfg.data_dir is not None:
        if not cfg.data_dir.is_dir():
            raise HermesBenchError(f"--data-dir {cfg.data_dir} is not a folder: pass a mirror laid out as "
                                   "<dir>/<org>/<dataset> (see README)")
        os.environ[DATA_DIR_ENV] = str(cfg.data_dir.resolve())  # read by the tasks' dataset hooks
    device = resolve_device(cfg.device)
    resolve_dtype(cfg.dtype, device)
    output = cfg.output or default_output(cfg.model or EMBEDDED_NAME)
    check_writable(output)
    if cfg.model is not None:
        check_source(cfg.model)
    processes.start(device)
    understanding = [s for s in specs if s.kind == "understanding"]
    task_dict = load_tasks([s.name for s in understanding], [s.path.parent for s in understanding]) \
        if understanding else {}
    _preflight([s for s in specs if s.kind in IMAGE_KINDS], cfg)
    model = load_model(cfg.model, cfg.device, cfg.dtype)
    remove_partial_writes(output)
    transformers.set_seed(cfg.seed)
    stats: dict = {}
    stages: dict[str, float] = {}
    start = time.perf_counter()
    scored, lm_eval_results = _understanding(model, understanding, task_dict, cfg, output, stats) \
        if understanding else ([], {})
    stages["understanding_s"] = time.perf_counter() - start
    for spec in (s for s in specs if s.kind in IMAGE_KINDS):
        scored_task = _generation(model, spec, cfg, output, stats)
        if scored_task is not None:
            scored.append(scored_task)
    stages["generation_s"] = time.perf_counter() - start - stages["understanding_s"]
    if not processes.is_main():
        return {}, []
    model_info = {"name": model.name, "path": str(model.path) if model.path else None,
                  "weights_sha256": model.weights_sha256(), "family": type(model).__name__}
    provenance = {"seed": cfg.seed, "batch_size": cfg.batch_size, "limit": cfg.limit, "device": cfg.device,
                  "dtype": cfg.dtype, "tasks": list(cfg.tasks), "samples_computed": stats,
                  "data_dir": str(cfg.data_dir) if cfg.data_dir else None, "data": dict(hub.SOURCES)}
    run = write_run(output, scored, model_info, provenance, cfg.seed, start, stages, model.model_seconds)
    run["lm_eval_results"] = str(lm_eval_format.write(output, lm_eval_results,
                                                      [s for s in scored if s.spec.kind != "understanding"], run))
    return run, scored


