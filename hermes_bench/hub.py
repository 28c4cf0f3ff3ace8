"""Benchmark datasets from the hub, or from a local mirror in the hub's layout, checked against their schema.

A mirror is a folder holding each dataset where the hub would: $HERMES_BENCH_DATA_DIR/<org>/<name>/ with the
repository's own files (parquet shards and the README whose `configs:` maps configs and splits to files).
`hermes-bench eval --data-dir DIR` sets the variable for one run; plain `lm_eval` reads it too.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import datasets
from PIL import Image, UnidentifiedImageError

from hermes_bench.errors import HermesBenchError, contained
from hermes_bench.storage import stat_fingerprint

DATA_DIR_ENV = "HERMES_BENCH_DATA_DIR"
# where each dataset of this process's runs came from, and a fingerprint of what it held: results.json records it
SOURCES: dict[str, dict[str, str | None]] = {}


def record_source(name: str, where: str | Path, fingerprint: str | None = None) -> str | None:
    """Note a dataset's source (and, for a local mirror, the fingerprint of its files); returns the fingerprint."""
    local = Path(where).exists()
    found = fingerprint or (stat_fingerprint(where) if local else None)
    SOURCES[name] = {"source": str(where), "fingerprint": found}
    return found


def source(hub_id: str) -> str:
    root = os.environ.get(DATA_DIR_ENV)
    return str(Path(root) / hub_id) if root else hub_id


def load_split(path: str, split: str, fields: list[str], name: str | None = None,
               image_fields: list[str] | None = None, **_) -> datasets.DatasetDict:
    """One split of `path` (hub id) and config `name`, as lm-eval's custom_dataset hook wants it.

    Image columns stay encoded (decoded by `decode_image` when a question needs them), so a broken image
    fails with its row named, and documents that are iterated several times stay cheap.
    """
    where = source(path)
    label = f"dataset {path}" + (f" (config {name})" if name else "")
    # a local mirror is prepared in a cache of its own content, never read through another folder's cache entry
    mirror = record_source(path, where) if where != path else None
    cache_dir = str(Path(datasets.config.HF_DATASETS_CACHE) / "hermes-bench-mirrors" / mirror[:16]) if mirror else None
    try:
        data = datasets.load_dataset(where, name, split=split, cache_dir=cache_dir)
    except ValueError as err:  # unknown split or config
        raise HermesBenchError(f"{label}: {str(err).splitlines()[0]}") from None
    except (FileNotFoundError, ConnectionError, OSError) as err:
        hint = f"its mirror folder {where} is missing" if where != path else \
            f"it is not reachable ({type(err).__name__}); set {DATA_DIR_ENV} or --data-dir to a local mirror"
        raise HermesBenchError(f"{label}: {hint}") from None
    if not mirror:
        record_source(path, where, getattr(data, "_fingerprint", None))
    missing = [f for f in fields if f not in data.column_names]
    if missing:
        raise HermesBenchError(f"{label} split {split}: field {', '.join(missing)} is missing "
                               f"(it has {', '.join(data.column_names)})")
    for field in image_fields or []:
        if field in data.column_names:
            data = data.cast_column(field, datasets.Image(decode=False))
    return datasets.DatasetDict({split: data})


def decode_image(cell: dict | Image.Image | None, what: str) -> Image.Image | None:
    """A stored image cell as an RGB PIL image; `what` names the dataset, row and field in the error."""
    if cell is None or isinstance(cell, Image.Image):
        return cell.convert("RGB") if cell is not None else None
    try:
        if cell.get("bytes"):
            with Image.open(io.BytesIO(cell["bytes"])) as im:
                return im.convert("RGB")
        root = os.environ.get(DATA_DIR_ENV)
        if not root:
            raise OSError("the cell holds a path, not the image")
        with Image.open(contained(Path(root), cell["path"], what)) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, TypeError) as err:
        raise HermesBenchError(f"{what}: cannot decode the image ({type(err).__name__}); "
                               "re-download or remove that row") from None
