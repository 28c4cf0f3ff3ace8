"""hermes-bench: measure and close the understanding-generation gap of unified multimodal models."""

from importlib.metadata import version

__version__ = version("hermes-bench")
