"""Memory plan for `hermes-bench align` at real size: the estimated peak memory per GPU of a Pair-DPO step for
Janus-Pro-1B/7B, Emu3 8B and Show-o 1.3B under full fine-tuning with DDP and with FSDP / ZeRO-3 on 8 GPUs, and
LoRA on 1 GPU; then the same estimate checked against measured peaks of a training step at tiny and small sizes
on CPU.

Usage: python benchmarks/memory_plan.py [--no-measure]

The trainer keeps float32 weights (bf16 autocast on GPUs) and AdamW, so full fine-tuning costs 4 bytes of weights,
4 of gradients and 8 of optimizer state per trained parameter; FSDP / ZeRO-3 divide all three by the GPU count
(plus one decoder layer gathered at a time, twice for prefetch). Activations are what backward keeps per token and
decoder layer (pre-norm Llama/Phi layer: 8 hidden + 2 key/value + 4 MLP-wide values, or 2 MLP-wide for a GELU
MLP), with memory-efficient attention (no sequence-squared term), plus the logits and their gradient. A record is
four sequences: the caption pair on the image (prompt + image tokens + answer, twice) and the image pair
(prompt + image tokens, twice); understanding also runs the vision encoder on the image twice.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from real_sizes import MODELS, LanguageModel, RealSize, Vision, parameters

GB = 2**30
ANSWER_TOKENS = 20
DDP_BATCH = 8  # records per step on 8 GPUs (--train-batch-size must split evenly: 1 record per GPU)
LORA_BATCH = 4  # the default --train-batch-size, all on one GPU
LORA_RANK = 16


def per_token(hidden: int, mlp: int, kv: int, gated: bool = True) -> int:
    """Values backward keeps per token in one decoder layer."""
    return 8 * hidden + 2 * kv + (4 if gated else 2) * mlp


def lm_tokens(size: RealSize) -> tuple[int, int]:
    """Tokens per record through the language model: (understanding pair, image pair)."""
    understanding = 2 * (size.prompt_tokens + size.image_tokens + ANSWER_TOKENS)
    generation = 2 * (size.prompt_tokens + size.image_tokens)
    return understanding, generation


def activations(size: RealSize, records: float, act_bytes: int, checkpointed: bool = False) -> float:
    """Bytes backward keeps for `records` records; checkpointed: each layer keeps only its input, and one layer's
    activations exist at a time (recomputed in backward)."""
    lm = size.language
    kv = lm.hidden * lm.kv_heads // lm.heads
    und, gen = lm_tokens(size)
    layer = per_token(lm.hidden, lm.mlp, kv, gated=lm.mlp != 4 * lm.hidden)
    body = (und + gen) * (lm.layers * lm.hidden + layer if checkpointed else lm.layers * layer)
    vision = size.vision
    if vision:
        layer = per_token(vision.hidden, vision.mlp, vision.hidden, gated=False)
        body += 2 * vision.tokens * (vision.layers * vision.hidden + layer if checkpointed else vision.layers * layer)
    image_vocab = size.image_vocab or lm.vocab
    logits = und * lm.vocab + 2 * size.image_tokens * image_vocab
    return records * (body * act_bytes + 2 * logits * act_bytes)  # logits and their gradient


def lora_parameters(lm: LanguageModel, rank: int) -> int:
    kv = lm.hidden * lm.kv_heads // lm.heads
    shapes = [(lm.hidden, lm.hidden)] * 2 + [(lm.hidden, kv)] * 2 + [(lm.hidden, lm.mlp)] * 2 + [(lm.mlp, lm.hidden)]
    if lm.mlp == 4 * lm.hidden:  # Phi: fc1, fc2
        shapes = [*shapes[:4], (lm.hidden, lm.mlp), (lm.mlp, lm.hidden)]
    return lm.layers * rank * sum(a + b for a, b in shapes)


def plan(size: RealSize) -> dict[str, dict[str, float]]:
    lm = size.language
    total = parameters(size.name)
    kv = lm.hidden * lm.kv_heads // lm.heads
    layer = 2 * lm.hidden * (lm.hidden + kv) + (3 if lm.mlp != 4 * lm.hidden else 2) * lm.hidden * lm.mlp
    rows = {}
    rows["full, DDP, 8 GPUs"] = {"weights": 4 * total, "gradients": 4 * total, "optimizer": 8 * total,
                                 "activations": activations(size, DDP_BATCH / 8, 2)}
    rows["full, FSDP / ZeRO-3, 8 GPUs"] = {"weights": 4 * total / 8 + 2 * 4 * layer, "gradients": 4 * total / 8,
                                           "optimizer": 8 * total / 8,
                                           "activations": activations(size, DDP_BATCH / 8, 2)}
    lora = lora_parameters(lm, LORA_RANK)
    rows[f"LoRA r{LORA_RANK}, 1 GPU"] = {"weights": 4 * total, "gradients": 4 * lora, "optimizer": 8 * lora,
                                         "activations": activations(size, LORA_BATCH, 2)}
    records = {"full, DDP, 8 GPUs": DDP_BATCH / 8, "full, FSDP / ZeRO-3, 8 GPUs": DDP_BATCH / 8,
               f"LoRA r{LORA_RANK}, 1 GPU": LORA_BATCH}
    for setup, row in rows.items():
        row["total"] = sum(row.values())
        row["activations, checkpointed"] = activations(size, records[setup], 2, checkpointed=True)
        row["total, checkpointed"] = row["total"] - row["activations"] + row["activations, checkpointed"]
    return {"parameters": total, **rows}


def measured(hidden: int, layers: int, vision_layers: int, records: int) -> dict:
    """In this process: a tiny Janus of these sizes, one full fine-tuning step of `records` records on CPU (float32):
    the peak resident memory over the resident memory after loading, and the estimate of the same."""
    from hermes_bench.align.data import shapes_records
    from hermes_bench.align.trainer import TrainingConfig, reference_logprobs, train
    from hermes_bench.embedded.tiny import tiny_janus

    network, processor = tiny_janus(0, hidden, layers, vision_layers)
    with tempfile.TemporaryDirectory() as tmp:
        network.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        del network
        from hermes_bench.models import load_model

        model = load_model(tmp, "cpu", "float32")
    recs = shapes_records(records, seed=3)
    tokens = model.image_tokens([r.image for r in recs])
    pairs = {r.id: {"understanding": {"win": r.caption, "lose": "a purple triangle"},
                    "generation": {"win": tokens[i].tolist(), "lose": tokens[(i + 1) % records].tolist()}}
             for i, r in enumerate(recs)}
    by_id = {r.id: r for r in recs}
    refs = reference_logprobs(model, by_id, pairs, "pair")
    config = model.module.config
    prompt = len(model.understanding_inputs(["<image>" + "Describe the image."], [[recs[0].image]]).input_ids[0])
    text = config.text_config
    vision = config.vision_config
    size = RealSize("measured", LanguageModel(text.hidden_size, text.intermediate_size, text.num_hidden_layers,
                                              text.num_attention_heads, text.num_key_value_heads, text.vocab_size),
                    tokens.shape[1], prompt - tokens.shape[1],
                    Vision(vision.num_hidden_layers, vision.hidden_size, int(vision.hidden_size * vision.mlp_ratio),
                           tokens.shape[1]), config.vq_config.num_embeddings)
    trainable = sum(p.numel() for n, p in model.module.named_parameters() if "vqmodel" not in n)
    with open("/proc/self/statm") as fh:
        before = int(fh.read().split()[1]) * resource.getpagesize()
    with tempfile.TemporaryDirectory() as tmp:
        train(model, by_id, pairs, refs, TrainingConfig(steps=1, batch_size=records, warmup=0), Path(tmp),
              log=lambda _: None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    estimate = 12 * trainable + activations(size, records, 4)  # gradients + AdamW, float32 activations on CPU
    return {"hidden": hidden, "layers": layers, "records": records, "trainable": trainable,
            "measured_gb": (peak - before) / GB, "estimated_gb": estimate / GB}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-measure", action="store_true", help="print the plan only")
    parser.add_argument("--measure", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measured(*args.measure)))
        return
    print("Estimated peak memory per GPU of one Pair-DPO step, GiB (float32 weights and AdamW, bf16 autocast; "
          f"DDP and FSDP at {DDP_BATCH} records a step, LoRA at {LORA_BATCH}):\n")
    print("| model | parameters | setup | weights | gradients | optimizer | activations | total | activations, "
          "--gradient-checkpointing | total, --gradient-checkpointing |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in MODELS.values():
        found = plan(size)
        for setup, row in found.items():
            if setup == "parameters":
                continue
            print(f"| {size.name} | {found['parameters'] / 1e9:.2f} B | {setup} | "
                  + " | ".join(f"{row[k] / GB:.1f}" for k in ("weights", "gradients", "optimizer", "activations",
                                                              "total", "activations, checkpointed",
                                                              "total, checkpointed")) + " |")
    if args.no_measure:
        return
    print("\nThe same estimate against a measured step on CPU (float32; gradients + AdamW + activations, against "
          "the peak resident memory over the resident memory after loading):\n")
    print("| size | trainable | records | measured GiB | estimated GiB | measured / estimated |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, sizes in (("tiny (hidden 64, 2 layers)", (64, 2, 2, 4)), ("small (hidden 512, 8 layers)", (512, 8, 4, 4)),
                        ("medium (hidden 1024, 12 layers)", (1024, 12, 4, 8))):
        out = subprocess.run([sys.executable, __file__, "--measure", *map(str, sizes)], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['trainable'] / 1e6:.1f} M | {r['records']} | {r['measured_gb']:.3f} | "
              f"{r['estimated_gb']:.3f} | {r['measured_gb'] / r['estimated_gb']:.2f} |")


if __name__ == "__main__":
    main()
