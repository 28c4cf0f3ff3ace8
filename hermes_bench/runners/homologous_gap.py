"""homologous_gap: HermesFlow's gap metric (the paper's Table 4) on any homologous dataset: rows of an image, its
caption and multiple-choice questions about the caption.

Understanding = the model's accuracy on the questions about the real image; generation = the judge's accuracy on
the same questions about the image the model generated from the caption; gap = understanding - generation with a
paired bootstrap over rows. The judge is the model itself by default, any model hermes-bench loads (`--judge
MODEL`, a local VLM), or a model behind an OpenAI-compatible API (`--judge openai:MODEL`, as the paper's GPT-4o).
Free-form answers are matched to a choice exactly (yes/no by POPE's parser); an external judge's are cached per
image, so a resumed run asks it nothing twice.

Task YAML: `kind: gap`, `benchmark: homologous_gap`, and `dataset: {path, split, image, caption, questions}` where
the questions column holds lists of {question, choices, answer}.
"""

from __future__ import annotations

from pathlib import Path

from accelerate import PartialState

from hermes_bench.errors import HermesBenchError
from hermes_bench.hub import decode_image, load_split
from hermes_bench.judges import SELF, ExactChoice, ask, check_judge, parse_questions
from hermes_bench.models.base import UnifiedModel
from hermes_bench.registry import TaskSpec
from hermes_bench.runners.generation import GenerationResult, GenerationSettings, generate, read_image
from hermes_bench.runners.shapes_gap import gap, sides
from hermes_bench.storage import SampleCache, atomic_save_png


def _rows(spec: TaskSpec, limit: int | None) -> list[tuple]:
    data = spec.config.get("dataset") or {}
    if "path" not in data:
        raise HermesBenchError(f"task {spec.name} ({spec.path}): set dataset.path (a hub id or folder)")
    fields = {k: data.get(k, k) for k in ("image", "caption", "questions")}
    split = data.get("split", "test")
    rows = load_split(data["path"], split, list(fields.values()), image_fields=[fields["image"]])[split]
    out = []
    for i, row in enumerate(rows.select(range(min(limit or len(rows), len(rows))))):
        where = f"dataset {data['path']} row {i}"
        questions = parse_questions(row[fields["questions"]], f"{where} {fields['questions']}")
        out.append((decode_image(row[fields["image"]], f"{where} {fields['image']}"), row[fields["caption"]],
                    questions))
    return out


NEEDS = "homologous questions about real data"


def preflight(spec: TaskSpec, settings: GenerationSettings) -> None:
    check_judge(settings.judge_name(SELF), NEEDS)


def run(model: UnifiedModel, spec: TaskSpec, settings: GenerationSettings, output: Path) -> GenerationResult | None:
    rows = _rows(spec, settings.limit)
    folder = output / "images" / spec.name

    def save(i: int, images: list) -> list[Path]:
        path = folder / f"{i:05d}.png"
        atomic_save_png(path, images[0])
        return [path]

    computed = generate(model, spec.name, [caption for _, caption, _ in rows], 1, save, output,
                        settings.batch_size, settings.seed, settings.guidance_scale, settings.progress)
    if not PartialState().is_main_process:
        return None
    judge = settings.load_judge(SELF, model, NEEDS)
    external = judge is not model
    questions = [qs for *_, qs in rows]
    generated = [read_image(folder / f"{i:05d}.png") for i in range(len(rows))]
    understood = ask(model, [image for image, *_ in rows], questions, ExactChoice(), settings.batch_size)
    judged = ask(judge, generated, questions, ExactChoice(), settings.batch_size,
                 cache=SampleCache(output, f"judge.{spec.name}") if external else None)
    records = []
    for i, (_, caption, qs) in enumerate(rows):
        for k, q in enumerate(qs):
            records.append({
                "scene_index": i, "caption": caption, "question": q.text, "truth": q.answer,
                "understanding_answer": understood[i][k], "understanding_correct": understood[i][k] == q.answer,
                "generation_answer": judged[i][k], "generation_correct": judged[i][k] == q.answer,
                "judge": settings.judge_name(SELF), "path": str((folder / f"{i:05d}.png").relative_to(output))})
    return GenerationResult(sides(records), records, computed, gap, "scene_index")
