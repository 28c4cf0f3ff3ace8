"""The one error type users see: a one-line message that names the thing and the fix."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

# files in which a model folder can name Python of its own for transformers to run (its `auto_map`)
CODE_NAMING_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


class HermesBenchError(Exception):
    """Bad input or state the user can fix; the CLI prints it on one line and exits with code 2."""


@contextmanager
def loading(what: str, fix: str = "") -> Iterator[None]:
    """from_pretrained's failures (no such folder, no hub, not that kind of model) as one line naming `what`, the
    first line of the cause, and the fix."""
    try:
        yield
    except HermesBenchError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError, ImportError,
            SafetensorError) as err:
        # a broken folder (truncated or corrupt weights, no tokenizer, weights that do not fit the config) or no hub
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise HermesBenchError(f"cannot load {what}: {first}" + (f"; {fix}" if fix else "")) from None


def refuse_remote_code(source: str, what: str) -> None:
    """A local model folder that names Python of its own to run (`auto_map`) is refused, never prompted for:
    hermes-bench loads every model with trust_remote_code=False."""
    folder = Path(source).expanduser()
    for name in CODE_NAMING_FILES:
        path = folder / name
        try:
            found = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            continue  # unreadable: from_pretrained reports it
        if isinstance(found, dict) and "auto_map" in found:
            raise HermesBenchError(f"{what} {source} asks to run its own Python code ({name} has auto_map): "
                                   "hermes-bench never runs code from model folders; use a model whose type "
                                   "transformers ships")


def contained(base: Path, name: str, what: str) -> Path:
    """`name` (a path read from a data or samples file) resolved under `base`; one that leads outside is refused."""
    path = (base / name).resolve()
    if not path.is_relative_to(base.resolve()):
        raise HermesBenchError(f"{what}: {name} leads outside {base}; keep the files a data file names inside its "
                               "folder")
    return path
