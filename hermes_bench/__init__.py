"""hermes-bench: measure and close the understanding-generation gap of unified multimodal models."""

from importlib.metadata import version
from pathlib import Path

__version__ = version("hermes-bench")


def check_same_tree(subpackage_file: str, package_file: str = __file__) -> None:
    """align/ and tasks/ ship inside the package (hermes_bench.align, hermes_bench.tasks) but live beside it in a
    checkout. Either way they must come from the same tree as hermes_bench itself: a checkout's hermes_bench with
    an installed copy's align (or the reverse) would run two versions at once, so it is refused."""
    package, subpackage = Path(package_file).resolve().parent, Path(subpackage_file).resolve().parent
    if subpackage.parent not in (package, package.parent):
        raise ImportError(f"hermes_bench comes from {package} but {subpackage.name}/ from {subpackage}: a checkout "
                          "and an installed copy are mixed; reinstall from the checkout (pip install -e .) or run "
                          "outside it")
