"""HermesFlow alignment: homologous data -> preference pairs -> Pair-DPO -> self-play rounds gated by the
benchmarks. Installed as hermes_bench.align."""
