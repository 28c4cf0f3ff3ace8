"""The run in lm-eval's own results format, written by lm-eval's EvaluationTracker, so its tools read it unchanged.

Understanding tasks come straight from lm-eval's evaluate(); generation and gap tasks are added in the same
shape (`metric,none` keys, `metric_stderr,none`, configs, versions, n-shot, higher_is_better, n-samples, task
hashes). Layout, as lm-eval's CLI writes it: <output>/lm_eval/<model>/results_<date>.json.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from lm_eval.loggers import EvaluationTracker
from lm_eval.utils import hash_string

from hermes_bench.errors import HermesBenchError
from hermes_bench.storage import PARTIAL
from hermes_bench.summary import Scored

FOLDER = "lm_eval"
SETTINGS = ("guidance_scale",)  # recorded beside a generation task's metrics, not a metric
LOWER_IS_BETTER = ("gap", "images_dropped", "fid")


def _generation_entries(scored: list[Scored]) -> tuple[dict, dict]:
    """lm-eval's per-task sections for the tasks lm-eval did not run, and their sample hashes."""
    entries: dict = {k: {} for k in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples")}
    samples = {}
    for s in scored:
        name, records = s.spec.name, s.parts[0].items
        metrics = {k: v for k, v in s.metrics[name].items() if k not in SETTINGS}
        entries["results"][name] = {"alias": name, **{f"{m},none": v for m, v in metrics.items()},
                                    **{f"{m}_stderr,none": "N/A" for m in metrics}}
        entries["configs"][name] = {"task": name, **s.spec.config,
                                    **{k: v for k, v in s.metrics[name].items() if k in SETTINGS}}
        entries["versions"][name] = s.spec.version
        entries["n-shot"][name] = 0
        entries["higher_is_better"][name] = {m: m not in LOWER_IS_BETTER for m in metrics}
        entries["n-samples"][name] = {"original": len(records), "effective": len(records)}
        samples[name] = [{"doc_hash": hash_string(json.dumps(r, sort_keys=True, default=str)),
                          "prompt_hash": hash_string(str(r.get("prompt", r.get("question", "")))),
                          "target_hash": hash_string("")} for r in records]
    return entries, samples


def write(output: Path, lm_eval_results: dict | None, generation: list[Scored], run: dict) -> Path:
    """lm-eval's results_<date>.json for the run; returns its path."""
    results = {k: v for k, v in (lm_eval_results or {}).items() if k != "samples"}
    samples = dict((lm_eval_results or {}).get("samples", {}))
    entries, generation_samples = _generation_entries(generation)
    for key, section in entries.items():
        results[key] = {**results.get(key, {}), **section}
    samples.update(generation_samples)
    provenance = run["provenance"]
    seed = provenance.get("seed")
    results["config"] = {"model": "hermes-bench", "model_args": f"pretrained={run['model']['name']}",
                         "batch_size": provenance.get("batch_size"), "batch_sizes": [],
                         "device": provenance.get("device"), "use_cache": None, "limit": provenance.get("limit"),
                         "bootstrap_iters": 0, "gen_kwargs": None, "random_seed": seed, "numpy_seed": seed,
                         "torch_seed": seed, "fewshot_seed": seed}
    results.update({"git_hash": provenance.get("git_commit"), "date": datetime.fromisoformat(run["date"]).timestamp(),
                    "pretty_env_info": "not collected: see results.json provenance",
                    "transformers_version": version("transformers"), "lm_eval_version": version("lm_eval"),
                    "upper_git_hash": None})
    final = output / FOLDER
    final.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final, prefix=".results.", suffix=PARTIAL) as tmp:
        # the tracker writes into a temporary folder; the finished file is then renamed into place
        tracker = EvaluationTracker(output_path=tmp)
        tracker.general_config_tracker.log_experiment_args(
            model_source="hermes-bench", model_args=results["config"]["model_args"], system_instruction=None,
            chat_template=None, fewshot_as_multiturn=False)
        tracker.save_results_aggregated(results=results, samples=samples)
        written = sorted(Path(tmp).glob("*/results_*.json"))
        if not written:
            raise HermesBenchError(f"lm-eval's EvaluationTracker wrote no results file under {final}: check the "
                                   "folder's permissions and free space")
        target = final / written[0].parent.name / written[0].name
        target.parent.mkdir(exist_ok=True)
        os.replace(written[0], target)
    return target
