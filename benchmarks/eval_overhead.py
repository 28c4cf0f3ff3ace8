"""Harness overhead on the embedded suite: time inside the model versus the whole eval.

Usage: python benchmarks/eval_overhead.py [--batch-size N]
Target: overhead (whole eval minus model time) at most 10% of model time. Model loading and Python imports
are outside both figures; the eval is timed from task loading to the written results.json, on a fresh folder.
"""

import argparse
import tempfile
from pathlib import Path

from hermes_bench.cli import _quiet_libraries
from hermes_bench.evaluate import EvalConfig, run_eval


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    _quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        run_eval(EvalConfig(output=Path(tmp) / "warmup", limit=2, progress=False, batch_size=args.batch_size))
        run = run_eval(EvalConfig(output=Path(tmp) / "run", progress=False, batch_size=args.batch_size))
    timings = run["provenance"]["timings"]
    model, total = timings["model_s"], timings["total_s"]
    print(f"embedded suite ({', '.join(run['headlines'])}), batch size {args.batch_size}")
    print(f"model time      {model:8.2f} s")
    print(f"whole eval      {total:8.2f} s")
    print(f"harness overhead {total - model:7.2f} s = {(total - model) / model:.1%} of model time (target <= 10%)")
    print("stages (model time included): " + ", ".join(
        f"{k.removesuffix('_s')} {timings[k]:.2f} s" for k in ("understanding_s", "generation_s", "bootstrap_s")))


if __name__ == "__main__":
    main()
