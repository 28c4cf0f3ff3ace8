"""GenEval: prompts in evaluation_metadata.jsonl's schema, images in the reference layout, detector + rules.

Layout (the reference's): <folder>/<00000>/metadata.jsonl (the prompt's record) + samples/<0000>.png. The same
scorer reads a folder we generated and one made by any other model (`hermes-bench score geneval DIR`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from accelerate import PartialState
from tqdm import tqdm

from hermes_bench.detectors import fingerprint as detector_fingerprint
from hermes_bench.detectors import load_detector
from hermes_bench.detectors.base import Detector
from hermes_bench.errors import HermesBenchError
from hermes_bench.hub import DATA_DIR_ENV, record_source
from hermes_bench.models import check_source
from hermes_bench.models.base import UnifiedModel
from hermes_bench.registry import BUILTIN_TASKS, TaskSpec
from hermes_bench.runners.generation import GenerationResult, GenerationSettings, generate, read_image
from hermes_bench.scoring import geneval
from hermes_bench.storage import SampleCache, atomic_save_png, atomic_write_jsonl, digest
from hermes_bench.world import datasets

MIRROR_PATH = "djghosh13/geneval/prompts/evaluation_metadata.jsonl"
# GenEval's prompt file (djghosh13/geneval at af4902f, MIT licence beside it), shipped with the package
SHIPPED = BUILTIN_TASKS / "geneval" / "evaluation_metadata.jsonl"
SHIPPED_SHA256 = "5c48e0813e812e3c373fa5c8ed07a8f0a483be30272b4427b0559c8048e67c13"
TAG_COUNTS = {"single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100,
              "color_attr": 100}
REQUIRED_FIELDS = ("tag", "prompt", "include")


def _validate(record: object, where: str) -> dict:
    if not isinstance(record, dict):
        raise HermesBenchError(f"{where}: a GenEval record must be a JSON object")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise HermesBenchError(f"{where}: field {', '.join(missing)} is missing; each record needs tag, prompt "
                               "and include (GenEval's schema)")
    if not isinstance(record["tag"], str) or not isinstance(record["prompt"], str) or not isinstance(
            record["include"], list) or not isinstance(record.get("exclude", []), list):
        raise HermesBenchError(f"{where}: tag and prompt must be strings, include and exclude lists of clauses")
    for k, clause in enumerate(record["include"] + record.get("exclude", [])):
        if not isinstance(clause, dict) or not {"class", "count"} <= clause.keys() or not isinstance(
                clause["class"], str) or isinstance(clause["count"], bool) or not isinstance(clause["count"], int):
            raise HermesBenchError(f"{where}: every include/exclude clause needs a class (a string) and a count "
                                   "(a whole number)")
        position = clause.get("position")
        if position is not None and not (isinstance(position, list) and len(position) == 2
                                         and isinstance(position[1], int) and 0 <= position[1] < k):
            raise HermesBenchError(f"{where}: a position must be [relation, index of an earlier include clause]")
    return record


def read_metadata(path: Path) -> list[dict]:
    if not path.is_file():
        raise HermesBenchError(f"GenEval metadata {path} does not exist")
    records = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(_validate(json.loads(line), f"{path} line {line_no}"))
            except json.JSONDecodeError as err:
                raise HermesBenchError(f"{path} line {line_no} is not JSON ({err.msg})") from None
    return records


def _check_reference(records: list[dict], where: str) -> list[dict]:
    counts = {tag: sum(r["tag"] == tag for r in records) for tag in TAG_COUNTS}
    if len(records) != sum(TAG_COUNTS.values()) or counts != TAG_COUNTS:
        raise HermesBenchError(f"{where} is not GenEval's evaluation_metadata.jsonl: expected 553 prompts "
                               f"({TAG_COUNTS}), found {len(records)} ({counts})")
    return records


def reference_metadata() -> list[dict]:
    """The 553 prompts: the --data-dir mirror's copy when it has one, else the copy shipped with the package
    (checked against its pinned sha256)."""
    mirror = Path(os.environ[DATA_DIR_ENV]) / MIRROR_PATH if os.environ.get(DATA_DIR_ENV) else None
    if mirror is not None and mirror.is_file():
        record_source("djghosh13/geneval", mirror)
        return _check_reference(read_metadata(mirror), str(mirror))
    if not SHIPPED.is_file() or hashlib.sha256(SHIPPED.read_bytes()).hexdigest() != SHIPPED_SHA256:
        raise HermesBenchError(f"{SHIPPED} is missing or changed (its sha256 is pinned): reinstall hermes-bench, or "
                               f"pass --data-dir with {MIRROR_PATH} inside")
    record_source("djghosh13/geneval", SHIPPED, SHIPPED_SHA256)
    return _check_reference(read_metadata(SHIPPED), str(SHIPPED))


def load_prompts(config: dict, base: Path) -> list[dict]:
    source = config.get("source")
    if source == "shapes":
        return datasets.geneval_metadata(config["n_per_tag"], config["seed"])
    if source == "jsonl":
        path = (base / config["path"]).resolve()
        record_source(str(path), path)
        return read_metadata(path)
    if source == "geneval":
        return reference_metadata()
    raise HermesBenchError(f"prompts.source must be 'shapes', 'jsonl' or 'geneval', not {source!r}")


def save(folder: Path, index: int, record: dict, images: list) -> list[Path]:
    prompt_dir = folder / f"{index:05d}"
    atomic_write_jsonl(prompt_dir / "metadata.jsonl", [record])
    paths = [prompt_dir / "samples" / f"{k:04d}.png" for k in range(len(images))]
    for path, image in zip(paths, images, strict=True):
        atomic_save_png(path, image)
    return paths


def read_layout(folder: Path) -> list[tuple[int, dict, list[Path]]]:
    """(index, record, images) per prompt folder of the reference layout."""
    if not folder.is_dir():
        raise HermesBenchError(f"{folder} is not a folder of GenEval samples (<00000>/metadata.jsonl + samples/)")
    found = []
    for prompt_dir in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()):
        meta_file = prompt_dir / "metadata.jsonl"
        if not meta_file.is_file():
            raise HermesBenchError(f"{prompt_dir} has no metadata.jsonl")
        try:
            record = _validate(json.loads(meta_file.read_text()), str(meta_file))
        except json.JSONDecodeError as err:
            raise HermesBenchError(f"{meta_file} is not JSON ({err.msg})") from None
        images = sorted(p for p in (prompt_dir / "samples").glob("*.png") if p.stem.isdigit())
        found.append((int(prompt_dir.name), record, images))
    if not found:
        raise HermesBenchError(f"{folder} holds no prompt folders (<00000>/metadata.jsonl + samples/<0000>.png)")
    return found


def score_folder(folder: Path, detector: Detector, detector_key: object, cache: SampleCache,
                 progress: bool = True, batch_size: int = 16, n_prompts: int | None = None) -> list[dict]:
    """One record per image (of the first n_prompts prompt folders, if given); verdicts are cached per batch as
    they are made, so a rerun does not score twice."""
    items = [(index, record, k, path) for index, record, paths in read_layout(folder) for k, path in enumerate(paths)
             if n_prompts is None or index < n_prompts]
    detector_id = detector_fingerprint(detector_key)
    records = []
    for start in tqdm(range(0, len(items), batch_size), desc="GenEval scoring", disable=not progress, leave=False):
        chunk = items[start:start + batch_size]
        images = [read_image(path) for *_, path in chunk]
        keys = [digest(detector_id, record, image) for (_, record, _, _), image in zip(chunk, images, strict=True)]
        todo = [j for j, key in enumerate(keys) if key not in cache]
        verdicts = {}
        for j, detections in zip(todo, detector.detect([images[j] for j in todo]) if todo else [], strict=True):
            record, image = chunk[j][1], images[j]
            objects = geneval.select(detections, record["tag"])
            correct, reason = geneval.grade(objects, record,
                                            lambda found, im=image: detector.colors(im, found, found[0].label))
            verdicts[keys[j]] = {"correct": correct, "reason": reason, "detections": [
                [d.label, d.color, round(d.score, 4), d.box] for ds in objects.values() for d in ds]}
        if verdicts:
            cache.put_many(verdicts)
        # "metadata" identifies the prompt as the reference's summary groups it
        records += [{"prompt_index": index, "image_index": k, "tag": record["tag"], "prompt": record["prompt"],
                     "metadata": json.dumps(record), "path": str(path), **cache.get(key)}
                    for (index, record, k, path), key in zip(chunk, keys, strict=True)]
    return records


def metrics(records: list[dict]) -> dict[str, float]:
    correct = [r["correct"] for r in records]
    return {**geneval.tag_scores([r["tag"] for r in records], correct),
            **geneval.summary([r["metadata"] for r in records], correct)}


def overall(records: list[dict]) -> float:
    return metrics(records)["overall"]


def preflight(spec: TaskSpec, settings: GenerationSettings) -> None:
    load_prompts(spec.config.get("prompts", {}), spec.path.parent)


def score(spec: TaskSpec, config, settings: GenerationSettings, output: Path) -> GenerationResult:
    """Images made elsewhere, in the reference layout under config.folder."""
    read_layout(config.folder)  # every record checked before a detector loads
    setting = settings.detector_setting(spec.config.get("detector", "mask2former"))
    for source in (v for k, v in (setting.items() if isinstance(setting, dict) else ()) if k.endswith("_id")):
        check_source(source, "GenEval detector folder")
    detector = load_detector(setting, settings.device)
    return result(score_folder(config.folder, detector, setting, SampleCache(output, f"scores.{spec.name}"),
                               settings.progress))


def run(model: UnifiedModel, spec: TaskSpec, settings: GenerationSettings, output: Path) -> GenerationResult | None:
    """Generate the missing images of the task's prompts, then detect and grade every image (on the main
    process; the others return None once their share of the images is done)."""
    prompts = load_prompts(spec.config.get("prompts", {}), spec.path.parent)[:settings.limit]
    setting = settings.detector_setting(spec.config.get("detector", "shapes"))
    detector = load_detector(setting, settings.device)  # before generating: a bad detector fails fast
    folder = output / "images" / spec.name
    computed = generate(model, spec.name, [p["prompt"] for p in prompts], settings.images_per_prompt(spec),
                        lambda i, images: save(folder, i, prompts[i], images), output, settings.batch_size,
                        settings.seed, settings.guidance_scale, settings.progress)
    if not PartialState().is_main_process:
        return None
    records = score_folder(folder, detector, setting, SampleCache(output, f"scores.{spec.name}"), settings.progress,
                           n_prompts=len(prompts))
    return result(records, computed)


def result(records: list[dict], computed: int = 0) -> GenerationResult:
    return GenerationResult(metrics(records), records, computed, overall, "prompt_index")
