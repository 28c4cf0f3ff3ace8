"""Pair-DPO step cost: reference log-probs precomputed once per round, win and lose in one concatenated forward
(hermes-bench), versus the reference model run every step beside the policy with win and lose in separate
forwards (the official code's way).

Usage: python benchmarks/dpo_step.py [--hidden 256] [--layers 4] [--batch 4] [--steps 10] [--device cpu]
Target: at most 0.8x the time of the baseline step, and no second model in memory. Each variant runs in a fresh
process, so its peak memory (CUDA: max allocated; CPU: peak resident set) is its own.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def run_variant(variant: str, args: argparse.Namespace, folder: Path) -> dict:
    from hermes_bench.align.curate import CAPTION_PROMPT
    from hermes_bench.align.data import shapes_records
    from hermes_bench.align.pair_dpo import Preference, pair_dpo_loss
    from hermes_bench.align.trainer import PairLogProbs, TrainingConfig, reference_logprobs, step_loss
    from hermes_bench.models import load_model

    policy = load_model(str(folder), args.device, "float32")
    records = shapes_records(args.batch, seed=1)
    tokens = torch.randint(0, 64, (2 * args.batch, 16))
    pairs = {r.id: {"understanding": {"win": r.caption, "lose": "a purple triangle"},
                    "generation": {"win": tokens[i].tolist(), "lose": tokens[args.batch + i].tolist()}}
             for i, r in enumerate(records)}
    config = TrainingConfig(batch_size=args.batch)
    optimizer = torch.optim.AdamW(policy.module.parameters(), lr=1e-5)
    drop = torch.zeros(args.batch, dtype=torch.bool)
    by_id = {r.id: r for r in records}
    models = 1
    if variant == "precomputed":
        refs = reference_logprobs(policy, by_id, pairs, "pair")  # once per round, outside the timed steps
        policy.module.train()
        scorer = PairLogProbs(policy, "pair", config.mask_key)

        def step() -> torch.Tensor:
            return step_loss(scorer, records, [pairs[r.id] for r in records], [refs[r.id] for r in records], drop,
                             config)[0]
    else:
        reference = load_model(str(folder), args.device, "float32")
        reference.module.eval().requires_grad_(False)
        models = 2
        policy.module.train()
        images = [[r.image] for r in records]
        captions = [r.caption for r in records]
        wins = [pairs[r.id]["understanding"]["win"] for r in records]
        loses = [pairs[r.id]["understanding"]["lose"] for r in records]
        win_tokens, lose_tokens = tokens[:args.batch], tokens[args.batch:]

        def logprobs(model):
            prompts = [CAPTION_PROMPT] * args.batch
            return (model.answer_logprobs(prompts, images, wins), model.answer_logprobs(prompts, images, loses),
                    model.image_logprobs(captions, win_tokens, drop), model.image_logprobs(captions, lose_tokens, drop))

        def step() -> torch.Tensor:
            uw, ul, gw, gl = logprobs(policy)
            with torch.no_grad():
                ruw, rul, rgw, rgl = logprobs(reference)
            return pair_dpo_loss(Preference(uw, ul, ruw, rul), Preference(gw, gl, rgw, rgl)).mean()

    times = []
    for i in range(args.steps + 2):  # two warm-up steps
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if args.device.startswith("cuda") else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"step_s": sorted(times)[len(times) // 2], "peak_bytes": peak, "models_in_memory": models}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args, Path(args.folder))))
        return
    from hermes_bench.embedded.tiny import build_tiny_janus

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_janus(Path(tmp), seed=0, hidden=args.hidden, layers=args.layers)
        found = {}
        for variant in ("reference-every-step", "precomputed"):
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--variant", variant, "--folder",
                                  str(folder)], capture_output=True, text=True, check=True)
            found[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    base, ours = found["reference-every-step"], found["precomputed"]
    print(f"tiny Janus hidden {args.hidden}, {args.layers} layers, batch {args.batch} records, {args.device}, "
          f"median of {args.steps} steps")
    for name, r in found.items():
        print(f"{name:22s} {r['step_s'] * 1000:8.1f} ms/step  peak {r['peak_bytes'] / 2**20:8.1f} MiB  "
              f"models in memory {r['models_in_memory']}")
    print(f"time ratio {ours['step_s'] / base['step_s']:.2f}x (target <= 0.8x); "
          f"peak memory ratio {ours['peak_bytes'] / base['peak_bytes']:.2f}x")


if __name__ == "__main__":
    main()
