"""shapes_gap: HermesFlow's homologous gap on the shapes world.

Each scene gives an image, its caption and yes/no questions the caption determines. Understanding = the model's
accuracy on the questions about the real image; generation = the judge's accuracy on the same questions about
the image the model generated from the caption; gap = understanding - generation, its interval from a paired
bootstrap over scenes. The judge is the exact oracle by default (`judge: exact`), or the model itself
(`judge: self`, the paper's self-VQA), or any model passed with --judge. Self-VQA is always run beside the
configured judge, and `self_agreement` is the share of images on which it and the oracle agree that the image
is right (every answer as the caption says) or not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from accelerate import PartialState

from hermes_bench.judges import EXACT, SELF, ExactJudge, Judge, ModelJudge, check_judge
from hermes_bench.models.base import UnifiedModel
from hermes_bench.registry import TaskSpec
from hermes_bench.runners.generation import GenerationResult, GenerationSettings, generate, read_image
from hermes_bench.storage import SampleCache, atomic_save_png
from hermes_bench.world.datasets import homologous
from hermes_bench.world.questions import QUESTION_TYPES
from hermes_bench.world.scene import render


def preflight(spec: TaskSpec, settings: GenerationSettings) -> None:
    check_judge(settings.judge_name(spec.config.get("judge", EXACT)))


def _judge(spec: TaskSpec, settings: GenerationSettings, self_judge: Judge, output: Path) -> Judge:
    name = settings.judge_name(spec.config.get("judge", EXACT))
    if name == EXACT:
        return ExactJudge()
    if name == SELF:
        return self_judge
    # an external judge's answers are cached: a rerun does not ask (or pay) twice
    return ModelJudge(settings.load_judge(name, self_judge.model, "shapes questions"), name, settings.batch_size,
                      SampleCache(output, f"judge.{spec.name}"))


def _accuracy(records: list[dict], field: str) -> float:
    return float(np.mean([r[field] for r in records])) if records else float("nan")


def gap(records: list[dict]) -> float:
    return _accuracy(records, "understanding_correct") - _accuracy(records, "generation_correct")


def sides(records: list[dict]) -> dict[str, float]:
    """The gap and its two sides, from per-question records."""
    return {"gap": gap(records), "understanding": _accuracy(records, "understanding_correct"),
            "generation": _accuracy(records, "generation_correct")}


def metrics(records: list[dict]) -> dict[str, float]:
    found = {**sides(records), "generation_self": _accuracy(records, "self_correct")}
    for kind in QUESTION_TYPES:
        of_kind = [r for r in records if r["type"] == kind]
        if of_kind:
            found[f"understanding/{kind}"] = _accuracy(of_kind, "understanding_correct")
            found[f"generation/{kind}"] = _accuracy(of_kind, "generation_correct")
    by_image: dict[int, list[dict]] = {}
    for r in records:
        by_image.setdefault(r["scene_index"], []).append(r)
    found["self_agreement"] = float(np.mean([
        all(r["generation_exact_correct"] for r in rs) == all(r["self_correct"] for r in rs)
        for rs in by_image.values()]))
    return found


def run(model: UnifiedModel, spec: TaskSpec, settings: GenerationSettings, output: Path) -> GenerationResult | None:
    scenes = spec.config.get("scenes", {})
    items = homologous(int(scenes.get("n", 300)), int(scenes.get("seed", 0)))[:settings.limit]
    folder = output / "images" / spec.name

    def save(i: int, images: list) -> list[Path]:
        path = folder / f"{i:05d}.png"
        atomic_save_png(path, images[0])
        return [path]

    computed = generate(model, spec.name, [it.caption for it in items], 1, save, output, settings.batch_size,
                        settings.seed, settings.guidance_scale, settings.progress)
    if not PartialState().is_main_process:
        return None
    self_judge = ModelJudge(model, "self", settings.batch_size)
    judge = _judge(spec, settings, self_judge, output)
    questions = [list(it.questions) for it in items]
    generated = [read_image(folder / f"{i:05d}.png") for i in range(len(items))]
    understood = self_judge.answer([render(it.scene) for it in items], questions)
    self_said = self_judge.answer(generated, questions)
    exact_said = ExactJudge().answer(generated, questions)
    judged = exact_said if isinstance(judge, ExactJudge) else self_said if judge is self_judge else \
        judge.answer(generated, questions)
    records = []
    for i, it in enumerate(items):
        for k, (q, truth) in enumerate(zip(it.questions, it.truths, strict=True)):
            records.append({
                "scene_index": i, "caption": it.caption, "type": q.kind, "question": q.text, "truth": truth,
                "understanding_answer": understood[i][k], "understanding_correct": understood[i][k] == truth,
                "generation_answer": judged[i][k], "generation_correct": judged[i][k] == truth,
                "generation_exact_correct": exact_said[i][k] == truth, "self_correct": self_said[i][k] == truth,
                "judge": judge.name, "path": str((folder / f"{i:05d}.png").relative_to(output))})
    return GenerationResult(metrics(records), records, computed, gap, "scene_index")
