"""Run outputs on disk: atomic writes, the per-sample cache that makes runs resumable, and the results file.

Layout of an output folder:
  results.json                   the run: metrics, summary (U, G, gap), configs, provenance
  samples_<task>.jsonl           one line per sample: inputs, raw model output, parsed output, metrics
  cache/<kind>.rank<r>.jsonl     finished model outputs, appended per batch; a rerun reuses them
  images/<task>/<00000>/samples/<0000>.png, metadata.jsonl   generated images, GenEval's layout
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from hermes_bench.errors import HermesBenchError

RESULTS_FILE = "results.json"


def files_sha256(paths: Iterable[Path]) -> str:
    """One sha256 over the files' bytes, in the order given (read in chunks: weights can be large)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def stat_fingerprint(source: str | Path) -> str:
    """A cheap fingerprint of what a local folder or file holds (every file's relative path, size and mtime), so an
    in-place change is never served from a cache; a hub id is its own fingerprint."""
    path = Path(source).expanduser()
    if not path.exists():
        return str(source)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = [(str(f.relative_to(path)) if path.is_dir() else f.name, st.st_size, st.st_mtime_ns)
             for f in files for st in [f.stat()]]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()


def check_writable(folder: Path) -> None:
    """Fail now, not after the first batch, when the run folder cannot be made: its nearest existing ancestor must be
    a writable folder. Nothing is created, so bad input found later still leaves no folder behind."""
    ancestor = folder.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    what = "is not a folder" if not ancestor.is_dir() else None
    if what is None:
        try:  # a real write (gone at once): access() says yes to root even where the filesystem says no
            with tempfile.TemporaryFile(dir=ancestor):
                pass
        except OSError:
            what = "is not writable"
    if what:
        raise HermesBenchError(f"cannot write the output folder {folder}: {ancestor} {what}; pass another --output")


PARTIAL = ".partial"  # the suffix of a write in progress; a kill can leave one behind


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary(path: Path, suffix: str = "") -> tuple[int, str]:
    """A temporary file beside `path`, with the permissions a plain open() would give it (mkstemp's are 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix + PARTIAL)
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


def remove_partial_writes(folder: Path) -> None:
    """Delete what killed writes left under `folder`: a run calls it before it starts writing there."""
    if folder.is_dir():
        for leftover in sorted(folder.rglob(f".*{PARTIAL}"), reverse=True):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old file or the new, never half."""
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(obj: Any) -> Any:
    """NaN and infinities (undefined metrics, such as POPE's F1 with no "yes" predicted) as null: valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(json_safe(obj), indent=2, default=str, allow_nan=False) + "\n").encode())


def atomic_write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(r, default=str) + "\n" for r in rows).encode())


def atomic_save_png(path: Path, image: Image.Image) -> None:
    fd, tmp = _temporary(path, ".png")
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def digest(*parts: Any) -> str:
    """A stable key for a model call: its inputs, JSON-encoded (images by their pixel hash)."""
    def encode(x: Any) -> Any:
        if isinstance(x, Image.Image):
            return hashlib.sha256(x.mode.encode() + str(x.size).encode() + x.tobytes()).hexdigest()
        if isinstance(x, list | tuple):
            return [encode(v) for v in x]
        if isinstance(x, dict):
            return {str(k): encode(v) for k, v in sorted(x.items())}
        return x

    return hashlib.sha256(json.dumps(encode(list(parts)), default=str).encode()).hexdigest()


class SampleCache:
    """Finished model outputs keyed by `digest`, one JSONL file per kind and process.

    Each batch is appended and fsynced as it finishes, so a killed run loses at most the batch in flight; a
    torn last line is ignored on reload. All processes' files are read, so a resumed run may use another
    number of processes.
    """

    def __init__(self, folder: Path, kind: str, rank: int = 0) -> None:
        self.path = folder / "cache" / f"{kind}.rank{rank}.jsonl"
        self.values: dict[str, Any] = {}
        for f in sorted(self.path.parent.glob(f"{kind}.rank*.jsonl")):
            text = f.read_text()
            for line in text.splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill
                self.values[row["key"]] = row["value"]
            if f == self.path and text and not text.endswith("\n"):
                with self.path.open("a") as fh:
                    fh.write("\n")  # later appends start on a fresh line after a torn one
        self.computed = 0

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str) -> Any:
        return self.values[key]

    def put_many(self, entries: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            for key, value in entries.items():
                fh.write(json.dumps({"key": key, "value": value}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.values.update(entries)
        self.computed += len(entries)


def _number(x: Any) -> bool:
    return x is None or (isinstance(x, int | float) and not isinstance(x, bool))


def _check_results(data: Any) -> str | None:
    """What is wrong with a results file's shape (None if nothing): what the leaderboard reads must be there."""
    if not isinstance(data, dict) or not isinstance(data.get("summary"), dict) or "results" not in data:
        return "no 'summary' or 'results'"
    if not isinstance(data.get("model"), dict) or not isinstance(data["model"].get("name"), str):
        return "no model name"
    if not isinstance(data.get("headlines"), dict):
        return "no headlines"
    for name, h in data["headlines"].items():
        if not (isinstance(h, dict) and _number(h.get("value")) and _number(h.get("max"))
                and isinstance(h.get("ci"), list) and all(_number(x) for x in h["ci"])
                and isinstance(h.get("details", {}), dict)):
            return f"headline {name} is not a value, max and ci of numbers"
    for side, v in data["summary"].items():
        if side in ("U", "G", "gap") and not (isinstance(v, dict) and _number(v.get("value"))
                                             and isinstance(v.get("ci"), list)):
            return f"summary {side} is not a value and ci of numbers"
    return None


def load_results(path: Path) -> dict:
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HermesBenchError(f"no results at {file}: pass a results.json or the output folder of a run") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HermesBenchError(f"{file} is not valid JSON ({str(err).splitlines()[0]}): rerun the eval to rewrite "
                               "it") from None
    problem = _check_results(data)
    if problem:
        raise HermesBenchError(f"{file} is not a hermes-bench results file ({problem}): pass the results.json "
                               "of a run, or rerun it")
    data["output"] = str(file.parent)
    return data
