"""Real-size smoke: Janus-Pro-1B's published configuration (benchmarks/real_sizes.py) with random weights, on CPU,
through hermes-bench's own loading and alignment code. It catches what tiny configurations cannot: 576 image
tokens, a 102,400-token vocabulary, 384-px images, the float32 training path. Not run in CI (minutes, ~10 GB).

Usage: python benchmarks/real_size_smoke.py [--folder DIR] [--lora-rank 16] [--no-gradient-checkpointing]
                                            [--parts answer,image,train]
Prints wall time and the process' peak resident memory after each part: save and load (a folder holding a
checkpoint from an earlier run is reused), a batched answer (2 questions), one 384-px image generated with CFG (576
tokens, then decoded), reference log-probs and one Pair-DPO step with LoRA on one homologous record.
"""

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from real_sizes import janus_pro_config


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None, help="where the random checkpoint is written")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--no-gradient-checkpointing", action="store_true",
                        help="keep every activation (one record then needs more than 24 GB on CPU in float32)")
    parser.add_argument("--parts", default="answer,image,train")
    args = parser.parse_args()
    chosen = args.parts.split(",")
    from transformers import JanusForConditionalGeneration

    from hermes_bench.embedded.tiny import BOS, EOS, IMAGE, PAD, janus_generation_config, janus_processor
    from hermes_bench.models import load_model

    parts: dict[str, dict] = {}

    def part(name: str, start: float, **extra) -> None:
        parts[name] = {"seconds": round(time.perf_counter() - start, 1), "peak_rss_gb": round(peak_gb(), 2), **extra}
        print(json.dumps({name: parts[name]}), flush=True)

    folder = args.folder or Path(tempfile.mkdtemp(prefix="janus-pro-1b-random-"))
    if not (folder / "config.json").is_file():
        start = time.perf_counter()
        config = janus_pro_config("1B")
        config.image_token_id = IMAGE
        config.text_config.bos_token_id, config.text_config.eos_token_id = BOS, EOS
        config.text_config.pad_token_id = PAD
        torch.manual_seed(0)
        network = JanusForConditionalGeneration(config).to(torch.bfloat16)  # random; bf16 on disk halves the write
        network.generation_config = janus_generation_config(5.0)
        network.save_pretrained(folder)
        janus_processor(image_size=384, patch=16).save_pretrained(folder)
        parameters = sum(p.numel() for p in network.parameters())
        del network
        part("build and save", start, parameters=parameters)

    start = time.perf_counter()
    model = load_model(str(folder), "cpu", "float32")
    part("load (float32)", start)

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (384, 384, 3), dtype=np.uint8))
    if "answer" in chosen:
        start = time.perf_counter()
        answers = model.answer(["<image>What is in the image?", "<image>Is there a cat? Please answer yes or no."],
                               [[image], [image]], max_new_tokens=8)
        part("batched answer (2 questions, 8 new tokens)", start, tokens_per_image=576, answers=len(answers))
    if "image" in chosen:
        start = time.perf_counter()
        tokens = model.generate_image_tokens(["a red cube on a table"], 1, 5.0, 0)
        part("image generation (CFG 5, 576 tokens)", start, tokens=list(tokens.shape))
        start = time.perf_counter()
        generated = model.decode_images(tokens)[0]
        part("image decode (VQ, 384 px)", start, size=list(generated.size))
    if "train" in chosen:
        train_step(model, image, args.lora_rank, not args.no_gradient_checkpointing, folder, part)
    print(json.dumps({"model": "Janus-Pro-1B configuration, random weights", "device": "cpu",
                      "threads": torch.get_num_threads(), "parts": parts}, indent=1))


def train_step(model, image, lora_rank: int, checkpointing: bool, folder: Path, part) -> None:
    """Reference log-probs and one Pair-DPO step with LoRA on one record (its image pair: two token grids)."""
    from hermes_bench.align.data import Record
    from hermes_bench.align.trainer import TrainingConfig, reference_logprobs, train

    codes = model.image_tokens([image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    record = Record("smoke-0", image, "a red cube on a table")
    pairs = {record.id: {"understanding": {"win": "a red cube on a table", "lose": "a green ball"},
                         "generation": {"win": codes[0].tolist(), "lose": codes[1].tolist()}}}
    config = TrainingConfig(steps=1, batch_size=1, warmup=0, checkpoint_every=10, lora_rank=lora_rank,
                            gradient_checkpointing=checkpointing)
    start = time.perf_counter()
    refs = reference_logprobs(model, {record.id: record}, pairs, "pair", mask_key=config.mask_key)
    part("reference log-probs (1 record, 3 forwards)", start)
    start = time.perf_counter()
    history = train(model, {record.id: record}, pairs, refs, config, folder / "training", log=lambda _: None)
    part(f"Pair-DPO step, LoRA rank {lora_rank}{', gradient checkpointing' if checkpointing else ''}, merged",
         start, loss=round(history[0]["loss"], 4))


if __name__ == "__main__":
    main()
