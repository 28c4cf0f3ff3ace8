"""Image grids for the HTML leaderboard: a few generated samples per GenEval tag (or DPG prompt), so people can
look at what a score stands for. Thumbnails are embedded, so the page is one self-contained file."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from PIL import Image, UnidentifiedImageError

PER_GROUP = 8
THUMBNAIL = 128


def _thumbnail(path: Path | None) -> str | None:
    if path is None:
        return None  # outside the run: not embedded
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            im.save(buffer, format="PNG")
    except (OSError, UnidentifiedImageError):
        return None  # a missing or broken file is left out of the picture, not fatal to the report
    return base64.b64encode(buffer.getvalue()).decode()


def _inside(run_dir: Path, name: str) -> Path | None:
    """A samples file's image path, only when it lies inside the run folder (or the folder `score` read)."""
    path = (run_dir / name).resolve()
    allowed = [run_dir.resolve(), run_dir.resolve().parent]  # `score` runs sit in FOLDER/hermes-bench
    return path if any(path.is_relative_to(root) for root in allowed) else None


def _group(record: dict) -> str:
    return record.get("tag") or "samples"


def gallery(run: dict, run_dir: Path) -> str:
    """HTML sections for each generation task of a run whose samples file is in run_dir."""
    sections = []
    for task, headline in run["headlines"].items():
        samples = run_dir / f"samples_{task}.jsonl"
        if headline["kind"] != "generation" or not samples.is_file():
            continue
        groups: dict[str, list[dict]] = {}
        for line in samples.read_text().splitlines():
            record = json.loads(line)
            groups.setdefault(_group(record), []).append(record)
        parts = [f"<h3>{html.escape(run['model']['name'])}: {html.escape(task)}</h3>"]
        for name, records in sorted(groups.items()):
            cells = []
            for record in records[:PER_GROUP]:
                data = _thumbnail(_inside(run_dir, record["path"]))
                if data is None:
                    continue
                ok = record.get("correct", (record.get("score") or 0) >= 0.5)  # a dropped DPG image has none
                title = html.escape(f"{record.get('prompt', record.get('item_id', ''))}: "
                                    f"{record.get('reason') or record.get('score', '')}", quote=True)
                cells.append(f'<img src="data:image/png;base64,{data}" title="{title}" width="{THUMBNAIL}" '
                             f'style="border:3px solid {"#2a2" if ok else "#c22"};margin:2px">')
            parts.append(f"<h4>{html.escape(name)}</h4><div>{''.join(cells)}</div>")
        sections.append("\n".join(parts))
    return "\n".join(sections)
