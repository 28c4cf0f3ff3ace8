"""HermesFlow alignment: homologous data -> preference pairs -> Pair-DPO -> self-play rounds gated by the
benchmarks. Installed as hermes_bench.align."""

from hermes_bench import check_same_tree

check_same_tree(__file__)
