"""From a trained shapes-world model to a release: the default CFG scale picked by measurement on a validation
seed, the default evaluation, and a model card that records recipe, seeds, scores and the weights' hash."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import GenerationConfig

from hermes_bench.judges import ExactJudge
from hermes_bench.models import load_model
from hermes_bench.storage import atomic_write_bytes, files_sha256
from hermes_bench.world.datasets import homologous

WEIGHTS = "model.safetensors"
VALIDATION_SEED = 5005  # no benchmark task uses it


def select_guidance(model_dir: Path, scales: tuple[float, ...], n_scenes: int = 300, device: str = "cpu",
                    batch_size: int = 32) -> dict[float, float]:
    """Exact-judge accuracy of generated images on homologous questions, per CFG scale (validation scenes);
    the best scale becomes the model's default."""
    model = load_model(str(model_dir), device, "float32")
    items = homologous(n_scenes, VALIDATION_SEED)
    scores = {}
    for scale in scales:
        images = []
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            images += [ims[0] for ims in model.generate_images([it.caption for it in chunk], 1, scale, start)]
        said = ExactJudge().answer(images, [list(it.questions) for it in items])
        right = [a == t for it, answers in zip(items, said, strict=True) for a, t in zip(answers, it.truths,
                                                                                         strict=True)]
        scores[scale] = sum(right) / len(right)
    best = max(scores, key=scores.get)
    config = GenerationConfig.from_pretrained(model_dir)
    config.guidance_scale = best
    config.save_pretrained(model_dir)
    return scores


def write_card(model_dir: Path, record: dict, guidance: dict[float, float], run: dict) -> Path:
    """README.md (the model card) and training.json beside the weights."""
    atomic_write_bytes(model_dir / "training.json", json.dumps(
        {**record, "guidance_validation": {str(k): v for k, v in guidance.items()}}, indent=2).encode())
    best = max(guidance, key=guidance.get)
    cfg = record["config"]
    headlines = "\n".join(
        f"| {name} | {h['metric']} | {h['value']:.3f} | [{h['ci'][0]:.3f}, {h['ci'][1]:.3f}] |"
        for name, h in run["headlines"].items())
    details = "\n".join(f"| {name} | {metric} | {value:.3f} |" for name, h in run["headlines"].items()
                        for metric, value in h["details"].items() if isinstance(value, float))
    summary = run["summary"]
    sides = "\n".join(f"| {side} | {summary[side]['value']:.3f} | [{summary[side]['ci'][0]:.3f}, "
                      f"{summary[side]['ci'][1]:.3f}] |" for side in ("U", "G", "gap") if side in summary)
    resumed = f", resumed after the saved {' and '.join(record['resumed'])} stages" if record["resumed"] else ""
    scales = "\n".join(f"| {k:g} | {v:.3f} |" for k, v in guidance.items())
    text = f"""# shapes-janus-tiny

The embedded default model of hermes-bench: a tiny Janus (JanusForConditionalGeneration) trained from scratch on
the shapes world, so that newcomers, tests and alignment demos run a model that has learned its world.

- weights: `{WEIGHTS}`, sha256 `{files_sha256([model_dir / WEIGHTS])}`
- recipe: `hermes-bench world train --output DIR --seed {cfg['seed']}` (hermes_bench/embedded/recipe.py):
  the VQ image tokenizer first ({cfg['vq_steps']} steps), then the vision encoder and a {cfg['layers']}-layer,
  {cfg['hidden']}-wide Llama jointly ({cfg['lm_steps']} steps, batch {cfg['batch_size']}) on yes/no questions with
  hard negatives, captions, and caption -> image tokens with condition dropout {cfg['condition_dropout']};
  then a focus phase ({cfg['focus_steps']} steps, lr {cfg['focus_lr']:g}) that adds position and count questions
  and the open questions they reduce to ("Where is the red circle?" -> "row two, column three"; "Where is the red
  circle relative to the blue square?" -> "left of"; "How many circles are there?" -> "two")
- seeds: training {cfg['seed']}; CFG validation scenes seed {VALIDATION_SEED}; benchmarks use their own seeds
- training took {record['seconds'] / 60:.1f} min on {cfg['device']}{resumed} ({record['codes_in_use']} VQ codes in use)

## Default CFG scale: {best:g}
Exact-judge accuracy of generated images on homologous questions, {VALIDATION_SEED}-seeded validation scenes:

| guidance scale | accuracy |
|---|---|
{scales}

## Scores (`hermes-bench eval --tasks {','.join(run['provenance']['tasks'])}`, seed {run['provenance']['seed']})

| task | metric | value | 95% CI |
|---|---|---|---|
{headlines}

| side | value | 95% CI |
|---|---|---|
{sides}

Breakdown:

| task | metric | value |
|---|---|---|
{details}
"""
    atomic_write_bytes(model_dir / "README.md", text.encode())
    return model_dir / "README.md"
