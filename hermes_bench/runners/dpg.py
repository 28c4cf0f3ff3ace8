"""DPG-Bench: prompts from the benchmark's folder and CSV, 2x2 grids, a pluggable VQA judge.

Layout (the reference's): <folder>/<item_id>.png, one 2x2 grid of the prompt's four images. The judge is any
model hermes-bench loads (models/); a question scores 1 iff its answer is exactly "yes".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from accelerate import PartialState
from PIL import Image
from tqdm import tqdm

from hermes_bench.errors import HermesBenchError
from hermes_bench.hub import DATA_DIR_ENV, record_source
from hermes_bench.judges import check_judge
from hermes_bench.models.base import IMAGE_PLACEHOLDER, Answerer, UnifiedModel
from hermes_bench.registry import TaskSpec
from hermes_bench.runners.generation import GenerationResult, GenerationSettings, generate, read_image
from hermes_bench.scoring import dpg
from hermes_bench.storage import SampleCache, atomic_save_png, digest

MIRROR_PATH = "TencentQQGYLab/ELLA/dpg_bench"
JUDGE_MAX_TOKENS = 8


def locate(config: dict, base: Path) -> tuple[Path, Path]:
    """(prompts folder, CSV): paths in the task config (relative to its YAML), else the --data-dir mirror."""
    if "prompts_dir" in config:
        return (base / config["prompts_dir"]).resolve(), (base / config["csv"]).resolve()
    if not os.environ.get(DATA_DIR_ENV):
        raise HermesBenchError(f"DPG-Bench needs its prompts folder and CSV: pass --data-dir with {MIRROR_PATH}/"
                               "prompts/ and dpg_bench.csv inside")
    root = Path(os.environ[DATA_DIR_ENV]) / MIRROR_PATH
    return root / "prompts", root / "dpg_bench.csv"


def load_prompts(prompts_dir: Path, csv_path: Path) -> tuple[list[tuple[str, str]], dict[str, list[dpg.Question]]]:
    """[(item_id, prompt)] in item_id order, and the questions of each; every prompt needs its CSV rows."""
    if not prompts_dir.is_dir():
        raise HermesBenchError(f"DPG-Bench prompts folder {prompts_dir} does not exist")
    record_source("DPG-Bench prompts", prompts_dir)
    record_source("DPG-Bench CSV", csv_path)
    questions = dpg.read_csv(csv_path)
    prompts = []
    for path in sorted(prompts_dir.glob("*.txt")):
        if path.stem not in questions:
            raise HermesBenchError(f"DPG-Bench prompt {path.name} has no rows in {csv_path}: use the CSV that "
                                   "belongs to this prompts folder")
        prompts.append((path.stem, path.read_text().strip()))
    if not prompts:
        raise HermesBenchError(f"DPG-Bench prompts folder {prompts_dir} holds no <item_id>.txt files")
    return prompts, questions


def save(folder: Path, item_id: str, images: list[Image.Image]) -> list[Path]:
    if len(images) != 4:
        raise HermesBenchError(f"DPG-Bench grids hold 4 images per prompt, not {len(images)}")
    side = images[0].size[0]
    grid = Image.new("RGB", (2 * side, 2 * side))
    for image, corner in zip(images, ((0, 0), (side, 0), (0, side), (side, side)), strict=True):
        grid.paste(image.resize((side, side)), corner)
    path = folder / f"{item_id}.png"
    atomic_save_png(path, grid)
    return [path]


def score_folder(folder: Path, prompts: list[tuple[str, str]], questions: dict[str, list[dpg.Question]],
                 judge: Answerer, cache: SampleCache, batch_size: int, progress: bool = True) -> list[dict]:
    """One record per prompt's grid; the judge's answers are cached per grid as they come."""
    records = []
    for item_id, _ in tqdm(prompts, desc="DPG scoring", disable=not progress, leave=False):
        path = folder / f"{item_id}.png"
        if not path.is_file():
            raise HermesBenchError(f"DPG-Bench image {path} is missing: every prompt needs its <item_id>.png grid")
        grid = read_image(path)
        asked = questions[item_id]
        key = digest(judge.fingerprint, item_id, [q.text for q in asked], grid)
        if key not in cache:
            pairs = [(tile, q.text) for tile in dpg.tiles(grid, str(path)) for q in asked]
            answers: list[str] = []
            for start in range(0, len(pairs), batch_size):
                chunk = pairs[start:start + batch_size]
                answers += judge.answer([IMAGE_PLACEHOLDER + text for _, text in chunk],
                                        [[tile] for tile, _ in chunk], max_new_tokens=JUDGE_MAX_TOKENS)
            cache.put_many({key: [answers[t * len(asked):(t + 1) * len(asked)] for t in range(4)]})
        records.append({**dpg.image_record(item_id, asked, cache.get(key)), "path": str(path)})
    return records


def metrics(records: list[dict], compat: bool = False) -> dict[str, float]:
    """The DPG score, its categories, and how many images were dropped as the reference drops them (warned)."""
    dropped = [r for r in records if "dropped" in r]
    if dropped:
        print(f"warning: DPG-Bench dropped {len(dropped)} of {len(records)} images, as the reference does: "
              f"{dropped[0]['item_id']}: {dropped[0]['dropped']} (all listed in the samples file); fix the CSV's "
              "dependency column", file=sys.stderr)
    return {"dpg": dpg.dpg_score(records), "images_dropped": len(dropped), **dpg.category_scores(records, compat)}


NEEDS = "DPG-Bench's questions"


def preflight(spec: TaskSpec, settings: GenerationSettings) -> None:
    load_prompts(*locate(spec.config.get("prompts", {}), spec.path.parent))
    check_judge(settings.judge_name(spec.config.get("judge")), NEEDS)


def score(spec: TaskSpec, config, settings: GenerationSettings, output: Path) -> GenerationResult:
    """Grids made elsewhere (config.folder/<item_id>.png), with the benchmark's prompts folder and CSV."""
    if config.prompts_dir is None or config.csv is None:
        raise HermesBenchError("scoring DPG-Bench images needs --prompts DIR and --csv FILE of the benchmark")
    prompts, questions = load_prompts(config.prompts_dir, config.csv)
    judge = settings.load_judge(spec.config.get("judge"), None, NEEDS)  # before the images are read
    records = score_folder(config.folder, prompts, questions, judge, SampleCache(output, f"scores.{spec.name}"),
                           settings.batch_size, settings.progress)
    return result(records, compat=config.compat)


def run(model: UnifiedModel, spec: TaskSpec, settings: GenerationSettings, output: Path) -> GenerationResult | None:
    """Generate the missing grids of the task's prompts, then ask the judge every question about every tile
    (on the main process; the others return None once their share of the grids is done)."""
    prompts, questions = load_prompts(*locate(spec.config.get("prompts", {}), spec.path.parent))
    prompts = prompts[:settings.limit]
    judge = settings.load_judge(spec.config.get("judge"), model, NEEDS)  # before generating: fails fast
    folder = output / "images" / spec.name
    computed = generate(model, spec.name, [text for _, text in prompts], settings.images_per_prompt(spec),
                        lambda i, images: save(folder, prompts[i][0], images), output, settings.batch_size,
                        settings.seed, settings.guidance_scale, settings.progress)
    if not PartialState().is_main_process:
        return None
    records = score_folder(folder, prompts, questions, judge, SampleCache(output, f"scores.{spec.name}"),
                           settings.batch_size, settings.progress)
    return result(records, computed, spec.config.get("compat", False))


def result(records: list[dict], computed: int = 0, compat: bool = False) -> GenerationResult:
    return GenerationResult(metrics(records, compat), records, computed, dpg.dpg_score, "item_id")
