"""Scoring images another model made, in a benchmark's reference layout, into a run like any other."""

from __future__ import annotations

import time

from hermes_bench import processes
from hermes_bench.configs import ScoreConfig
from hermes_bench.errors import HermesBenchError
from hermes_bench.models import resolve_device
from hermes_bench.registry import Registry
from hermes_bench.report import lm_eval_results as lm_eval_format
from hermes_bench.runners import SCORABLE, benchmark
from hermes_bench.runners.generation import GenerationSettings
from hermes_bench.storage import check_writable, remove_partial_writes
from hermes_bench.summary import scored_generation, write_run


def score_images(cfg: ScoreConfig) -> dict:
    """The task's scorer on a folder of images, written as a run with the same results schema ({} on processes
    other than the main one)."""
    if cfg.benchmark not in SCORABLE:
        raise HermesBenchError(f"{cfg.benchmark} cannot score images made elsewhere: use one of {', '.join(SCORABLE)}")
    spec = Registry().get([cfg.benchmark])[0]
    output = cfg.output or cfg.folder / "hermes-bench"
    check_writable(output)
    settings = GenerationSettings(cfg.batch_size, cfg.limit, cfg.seed, 0.0, resolve_device(cfg.device), cfg.progress,
                                  cfg.detector_model, cfg.clip_model, cfg.judge, cfg.fid_features)
    processes.start(settings.device)
    remove_partial_writes(output)
    start = time.perf_counter()
    result = benchmark(cfg.benchmark).score(spec, cfg, settings, output)
    if result is None or not processes.is_main():  # coco30k scores in shares; the main process writes the run
        return {}
    scored = [scored_generation(spec, result, output)]
    model_info = {"name": f"images in {cfg.folder}", "path": str(cfg.folder), "weights_sha256": None,
                  "family": None}
    provenance = {"seed": cfg.seed, "scored_folder": str(cfg.folder), "tasks": [spec.name]}
    run = write_run(output, scored, model_info, provenance, cfg.seed, start,
                    {"scoring_s": time.perf_counter() - start}, 0.0)
    run["lm_eval_results"] = str(lm_eval_format.write(output, None, scored, run))
    return run
