"""Task definitions (lm-eval YAMLs and ours). Installed as hermes_bench.tasks."""

from hermes_bench import check_same_tree

check_same_tree(__file__)
