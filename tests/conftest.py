import os
from pathlib import Path

import pytest

from hermes_bench.models.tiny import build_tiny_emu3, build_tiny_janus


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """The embedded model is built into a per-session cache, never the user's."""
    os.environ["HERMES_BENCH_CACHE"] = str(tmp_path_factory.mktemp("hermes-cache"))


@pytest.fixture(scope="session")
def tiny_janus(tmp_path_factory) -> Path:
    """A tiny Janus saved with save_pretrained, loaded back through the real from_pretrained path."""
    return build_tiny_janus(tmp_path_factory.mktemp("tiny-janus"), seed=1)


@pytest.fixture(scope="session")
def tiny_emu3(tmp_path_factory) -> Path:
    """A tiny Emu3 (tokenizer with visual tokens, processor, VQ) saved with save_pretrained."""
    return build_tiny_emu3(tmp_path_factory.mktemp("tiny-emu3"), seed=1)
