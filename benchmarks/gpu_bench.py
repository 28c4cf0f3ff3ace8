"""GPU benchmark at real size: Janus-Pro-1B's published configuration (benchmarks/real_sizes.py) with random weights
in bf16, through transformers alone (torch + transformers: what the GPU machines have; peft for the LoRA row).

Usage: python benchmarks/gpu_bench.py [--size 1B|7B|tiny] [--device cuda] [--bandwidth-gbs 4800]
Prints one JSON line per measurement:
- understanding: questions/s at batch 1, 8, 32 (a 384-px image, a short question, 16 new tokens each);
- generation: images/s at batch 1, 8, 32 (576 tokens with CFG, transformers' Janus loop, static KV cache);
- decode step: one image-token step (CFG doubles the batch) of our own loop on a static KV cache, eager and under
  torch.compile, against the memory-bandwidth floor: the language model's and generation head's weights plus the
  KV cache read once a step, over the GPU's bandwidth (--bandwidth-gbs; H200: 4,800 GB/s);
- Pair-DPO step: one step on one homologous record (the caption pair and the image pair), full fine-tuning
  (float32 weights, AdamW, bf16 autocast, as the trainer) and LoRA (rank 16, peft), time and peak memory.
`--size tiny --device cpu` runs every part in seconds, to check the script where there is no GPU. The GPU machines
have torch and transformers only: carry a peft wheel (`pip download --no-deps peft`) for the LoRA row.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import JanusConfig, JanusForConditionalGeneration, LlamaConfig, StaticCache
from transformers.models.janus.configuration_janus import JanusVisionConfig, JanusVQVAEConfig

sys.path.insert(0, str(Path(__file__).parent))
from real_sizes import janus_pro_config

BOS, PAD, IMAGE, BOI = 0, 2, 3, 4  # special ids of the random vocabulary
PROMPT = 24  # text tokens around the image or before the generated one


def tiny_config() -> JanusConfig:
    return JanusConfig(
        text_config=LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=4),
        vision_config=JanusVisionConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2,
                                        image_size=32, patch_size=8, num_image_tokens=16, projection_dim=64),
        vq_config=JanusVQVAEConfig(embed_dim=8, num_embeddings=64, base_channels=32, channel_multiplier=[1, 1, 1],
                                   num_res_blocks=1, projection_dim=64, image_token_embed_dim=64))


def build(size: str, device: str, dtype: torch.dtype) -> JanusForConditionalGeneration:
    config = tiny_config() if size == "tiny" else janus_pro_config(size)
    config.image_token_id = IMAGE
    config.text_config.bos_token_id, config.text_config.pad_token_id = BOS, PAD
    torch.manual_seed(0)
    with torch.device(device):  # transformers' own random initialisation, on the device
        model = JanusForConditionalGeneration(config)
    model.generation_config.bos_token_id, model.generation_config.pad_token_id = BOS, PAD
    model.generation_config.generation_kwargs = {"boi_token_id": BOI}
    return model.to(dtype).eval()


def timed(fn, device: str, repeat: int = 3) -> float:
    """Median seconds of `repeat` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def image_tokens(model) -> int:
    return model.config.vision_config.num_image_tokens


def understanding_inputs(model, batch: int, device: str, dtype: torch.dtype) -> dict:
    n, size = image_tokens(model), model.config.vision_config.image_size
    ids = torch.cat([torch.full((batch, 1), BOS), torch.full((batch, n), IMAGE),
                     torch.randint(10, 400, (batch, PROMPT))], 1)
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "pixel_values": torch.randn(batch, 3, size, size, device=device, dtype=dtype)}


def understanding(model, batches, device, dtype, report) -> None:
    for batch in batches:
        inputs = understanding_inputs(model, batch, device, dtype)
        seconds = timed(lambda i=inputs: model.generate(**i, max_new_tokens=16, min_new_tokens=16, do_sample=False),
                        device)
        report({"part": "understanding", "batch": batch, "questions_per_s": batch / seconds})


def generation(model, batches, device, report) -> None:
    for batch in batches:
        ids = torch.cat([torch.full((batch, 1), BOS), torch.randint(10, 400, (batch, PROMPT)),
                         torch.full((batch, 1), BOI)], 1).to(device)
        seconds = timed(lambda i=ids: model.generate(input_ids=i, attention_mask=torch.ones_like(i),
                                                     generation_mode="image", do_sample=True, guidance_scale=5.0),
                        device, repeat=1)
        report({"part": "generation", "batch": batch, "images_per_s": batch / seconds,
                "s_per_token_step": seconds / image_tokens(model)})


def decode_step(model, batch: int, device: str, dtype: torch.dtype, bandwidth: float, report) -> None:
    """One image-token step of a CFG loop (2 * batch rows) on a static cache filled to the middle of an image (the
    mean cache read of a whole image), eager and compiled."""
    lm, n = model.model.language_model, image_tokens(model)
    rows, filled = 2 * batch, PROMPT + 2 + n // 2
    tokens = torch.randint(0, model.config.vq_config.num_embeddings, (rows,), device=device)
    cache = None

    def fresh_cache() -> None:  # each timed step appends one position; 128 spare are plenty
        nonlocal cache
        cache = StaticCache(config=model.config.text_config, max_cache_len=filled + 128)
        lm(inputs_embeds=torch.randn(rows, filled, model.config.text_config.hidden_size, device=device,
                                     dtype=dtype), cache=cache, use_cache=True)

    def step(tokens):
        embeds = model.prepare_embeddings_for_image_generation(tokens[:, None])
        hidden = lm(inputs_embeds=embeds, cache=cache, use_cache=True)
        logits = model.model.generation_head(hidden.last_hidden_state[:, -1])
        cond, uncond = logits.float().chunk(2)
        guided = uncond + 5.0 * (cond - uncond)
        return torch.multinomial(F.softmax(guided, -1), 1).squeeze(-1).repeat(2)

    text = model.config.text_config
    weights = sum(p.numel() * p.element_size() for p in [*lm.parameters(), *model.model.generation_head.parameters()])
    kv = 2 * text.num_hidden_layers * rows * filled * text.num_key_value_heads * \
        (text.hidden_size // text.num_attention_heads) * dtype.itemsize
    floor = (weights + kv) / bandwidth
    with torch.no_grad():
        for name, fn in (("eager", step), ("torch.compile", torch.compile(step, mode="reduce-overhead"
                                                                          if device.startswith("cuda") else None))):
            fresh_cache()
            try:
                seconds = timed(lambda f=fn: f(tokens), device, repeat=20)
            except ImportError as err:  # a compiler missing here is a finding, not a crash
                report({"part": "decode step", "mode": name, "batch": batch, "error": f"{type(err).__name__}: {err}"})
                continue
            report({"part": "decode step", "mode": name, "batch": batch, "ms": seconds * 1e3,
                    "floor_ms": floor * 1e3, "of_floor": floor / seconds})


def dpo_step(size: str, device: str, lora: bool, report) -> None:
    """One Pair-DPO step as the trainer runs it: float32 weights, bf16 autocast, AdamW, reference log-probs given."""
    model = build(size, device, torch.float32)
    if lora:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            report({"part": "Pair-DPO step", "setup": "LoRA r16", "error": "peft is not installed"})
            return
        # JanusModel.lora_targets, written out: this script imports nothing of hermes_bench
        get_peft_model(model, LoraConfig(r=16, lora_alpha=16, target_modules=(
            r"model\.language_model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)")))
    else:
        for name, p in model.named_parameters():
            p.requires_grad_("vqmodel" not in name)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    n = image_tokens(model)
    inputs = understanding_inputs(model, 2, device, torch.float32)  # the caption pair: win and lose
    answers = inputs["input_ids"][:, -16:]
    codes = torch.randint(0, model.config.vq_config.num_embeddings, (2, n), device=device)  # the image pair
    prompt = torch.randint(10, 400, (2, PROMPT), device=device)
    reference = torch.zeros(2, device=device)

    def step():
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
            logits = model(**inputs).logits[:, -17:-1]
            understanding = torch.gather(logits.float().log_softmax(-1), -1, answers[..., None]).sum((1, 2))
            embeds = torch.cat([model.get_input_embeddings()(prompt),
                                model.prepare_embeddings_for_image_generation(codes[:, :-1])], 1)
            hidden = model.model.language_model(inputs_embeds=embeds).last_hidden_state[:, PROMPT - 1:]
            image = model.model.generation_head(hidden).float().log_softmax(-1)
            generation = torch.gather(image, -1, codes[..., None]).sum((1, 2))
        margins = [(s[0] - reference[0]) - (s[1] - reference[1]) for s in (understanding, generation)]
        loss = sum(-F.logsigmoid(0.5 * m) for m in margins)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(step, device, repeat=3)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    report({"part": "Pair-DPO step", "setup": "LoRA r16" if lora else "full", "seconds": seconds,
            "peak_gib": peak, "trained_parameters": trained})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["1B", "7B", "tiny"], default="1B")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--bandwidth-gbs", type=float, default=4800.0)
    parser.add_argument("--parts", default="understanding,generation,decode,dpo")
    args = parser.parse_args()
    parts = args.parts.split(",")
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    batches = (1, 2) if args.size == "tiny" else (1, 8, 32)

    def report(row: dict) -> None:
        print(json.dumps({"size": args.size, "device": args.device, **row}), flush=True)

    model = build(args.size, args.device, dtype)
    with torch.no_grad():
        if "understanding" in parts:
            understanding(model, batches, args.device, dtype, report)
        if "generation" in parts:
            generation(model, batches, args.device, report)
    if "decode" in parts:
        decode_step(model, batches[-1], args.device, dtype, args.bandwidth_gbs * 1e9, report)
    del model
    if "dpo" in parts:
        for lora in (False, True):
            dpo_step(args.size, args.device, lora, report)


if __name__ == "__main__":
    main()
