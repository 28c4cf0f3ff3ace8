"""Questions per second: our adapter (batched, length-sorted) versus lm-eval's own hf-multimodal model, on the
same tiny Janus and the same task, in one run, with the answers compared.

Usage: python benchmarks/understanding_throughput.py [--questions 120] [--batch-size 32]
Target: at least 5x hf-multimodal, with identical answers.
"""

import argparse
import tempfile
import time
from pathlib import Path

from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from hermes_bench.cli import _quiet_libraries
from hermes_bench.embedded.tiny import build_tiny_janus
from hermes_bench.models import load_model
from hermes_bench.registry import BUILTIN_TASKS
from hermes_bench.runners.understanding import run_understanding

TASK = "shapes_pope_random"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    _quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_janus(Path(tmp) / "tiny", seed=0)
        tasks = BUILTIN_TASKS / "shapes"

        model = load_model(str(model_dir), device="cpu", dtype="float32")
        start = time.perf_counter()
        ours, _, _ = run_understanding(model, [TASK], [tasks], Path(tmp) / "ours", args.batch_size,
                                       args.questions, progress=False)
        ours_s = time.perf_counter() - start

        start = time.perf_counter()
        theirs = simple_evaluate(model="hf-multimodal", model_args={"pretrained": str(model_dir)}, device="cpu",
                                 tasks=[TASK], task_manager=TaskManager(include_path=str(tasks),
                                                                         include_defaults=False),
                                 limit=args.questions, bootstrap_iters=0, log_samples=True)
        theirs_s = time.perf_counter() - start

    answers = [[s["filtered_resps"][0] for s in sorted(r["samples"][TASK], key=lambda s: s["doc_id"])]
               for r in (ours, theirs)]
    n = len(answers[0])
    same = sum(a == b for a, b in zip(*answers, strict=True))
    print(f"{TASK}, {n} questions, tiny Janus on CPU (each timing includes lm-eval's task setup)")
    print(f"hermes-bench adapter (batch {args.batch_size}): {n / ours_s:7.1f} questions/s ({ours_s:.1f} s)")
    print(f"lm-eval hf-multimodal (batch 1):  {n / theirs_s:7.1f} questions/s ({theirs_s:.1f} s)")
    print(f"speed-up: {theirs_s / ours_s:.1f}x (target >= 5x); identical answers: {same}/{n}")


if __name__ == "__main__":
    main()
