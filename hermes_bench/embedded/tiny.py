"""Tiny unified models for the shapes world, built offline: a BPE tokenizer trained on the world's words, a
32x32 image processor, a VQ with a 4x4 token grid and a small language model. The tiny Janus serves the tests and
the embedded default; the tiny Emu3 and the tiny Show-o prove the model interface on other families."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    Emu3Config,
    Emu3ForConditionalGeneration,
    Emu3ImageProcessor,
    Emu3Processor,
    GenerationConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusImageProcessorPil,
    JanusProcessor,
    LlamaConfig,
    PhiConfig,
    PreTrainedTokenizerFast,
)
from transformers.models.emu3.configuration_emu3 import Emu3TextConfig, Emu3VQVAEConfig
from transformers.models.janus.configuration_janus import JanusVisionConfig, JanusVQVAEConfig

from hermes_bench.models.magvitv2 import MagvitSizes
from hermes_bench.models.showo import build_magvit, build_network, phi_config
from hermes_bench.models.showo_prompting import NEW_TOKENS
from hermes_bench.world import language
from hermes_bench.world.datasets import POPE_SPLITS, geneval_metadata
from hermes_bench.world.questions import question_pairs
from hermes_bench.world.scene import IMAGE_SIZE, sample_scene

SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<image_placeholder>",
           "<begin_of_image>", "<end_of_image>"]
BOS, EOS, PAD, IMAGE, BOI, EOI = range(len(SPECIAL))


def world_corpus(seed: int = 0, n: int = 400) -> list[str]:
    """Texts covering the world's vocabulary: captions, questions, answers and generation prompts."""
    rng = random.Random(seed)
    texts = ["yes", "no", "Yes", "No", language.YES_NO_SUFFIX.strip(), language.CAPTION_PROMPT,
             "Answer the question using a single word or phrase."]
    for _ in range(n):
        scene = sample_scene(rng)
        texts += [language.caption(scene), language.caption(scene, colors=False)]
        texts += [q.text for pair in question_pairs(scene, rng) for q in pair]
    texts += [m["prompt"] for m in geneval_metadata(20, seed)] + list(POPE_SPLITS)
    return texts


def train_bpe(corpus: list[str], special: list[str], vocab_size: int = 512) -> Tokenizer:
    """A byte-level BPE trained on the corpus, the special tokens first."""
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tk


def build_tokenizer(corpus: list[str], special: list[str], named: dict[str, str],
                    vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the corpus; special[0:3] are BOS, EOS and pad (ids 0-2, BOS prepended);
    `named` gives the model-specific special tokens their attribute names (image_token, boi_token, ...)."""
    tk = train_bpe(corpus, special, vocab_size)
    tk.post_processor = processors.TemplateProcessing(single=f"{special[0]} $A", special_tokens=[(special[0], 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=special[0], eos_token=special[1],
                                   pad_token=special[2], padding_side="left", extra_special_tokens=named)


def janus_processor(seed: int = 0, image_size: int = IMAGE_SIZE, patch: int = 8) -> JanusProcessor:
    """A Janus processor with the world's BPE (special tokens BOS, EOS, pad, image, begin and end of image at ids
    0-5) and SigLIP's normalisation, for `image_size` images cut in `patch`-pixel patches."""
    tokenizer = build_tokenizer(world_corpus(seed), SPECIAL, {"image_token": SPECIAL[IMAGE], "boi_token": SPECIAL[BOI],
                                                              "eoi_token": SPECIAL[EOI]})
    return JanusProcessor(JanusImageProcessorPil(size={"height": image_size, "width": image_size},
                                                 image_mean=[0.5] * 3, image_std=[0.5] * 3),
                          tokenizer, num_image_tokens=(image_size // patch) ** 2)


def janus_generation_config(guidance_scale: float) -> GenerationConfig:
    """The special-token ids `janus_processor`'s tokenizer gives, as Janus' generate reads them."""
    return GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
                            generation_kwargs={"boi_token_id": BOI}, guidance_scale=guidance_scale)


def tiny_janus(seed: int = 0, hidden: int = 64, layers: int = 2, vision_layers: int | None = None,
               guidance_scale: float = 2.0) -> tuple[JanusForConditionalGeneration, JanusProcessor]:
    """A randomly initialised tiny Janus and its processor: 32x32 images, a 4x4 grid of image tokens."""
    patch = 8
    processor = janus_processor(seed, IMAGE_SIZE, patch)
    tokenizer = processor.tokenizer
    config = JanusConfig(
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD),
        vision_config=JanusVisionConfig(hidden_size=hidden, num_hidden_layers=vision_layers or layers,
                                        num_attention_heads=4, mlp_ratio=2, image_size=IMAGE_SIZE, patch_size=patch,
                                        num_image_tokens=(IMAGE_SIZE // patch) ** 2, projection_dim=hidden),
        vq_config=JanusVQVAEConfig(embed_dim=8, num_embeddings=64, latent_channels=32, base_channels=32,
                                   channel_multiplier=[1, 1, 1, 1], num_res_blocks=1, projection_dim=hidden,
                                   image_token_embed_dim=hidden),
        image_token_id=IMAGE)
    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(config)
    model.generation_config = janus_generation_config(guidance_scale)
    return model, processor


def build_tiny_janus(out_dir: Path, seed: int = 0, hidden: int = 64, layers: int = 2,
                     guidance_scale: float = 2.0) -> Path:
    """Save a randomly initialised tiny Janus (model + processor) to out_dir with save_pretrained."""
    model, processor = tiny_janus(seed, hidden, layers, guidance_scale=guidance_scale)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


EMU3_SPECIAL = ["<|extra_203|>", "<|extra_204|>", "<|endoftext|>", "<image>", "<|image start|>", "<|image end|>",
                "<|image token|>", "<|extra_201|>", "<|extra_200|>"]  # ... end of frame, end of row (Emu3's names)


def build_tiny_emu3(out_dir: Path, seed: int = 0, hidden: int = 64, layers: int = 2, codes: int = 64) -> Path:
    """Save a randomly initialised tiny Emu3 (model + processor): the tokenizer holds one
    '<|visual token NNNNNN|>' per VQ code and Emu3's image delimiters; 32x32 images make a 4x4 token grid (the
    processor's fixed 8x downsample: a VQ with four channel multipliers)."""
    visual = [f"<|visual token {i:06d}|>" for i in range(codes)]
    names = ("image_token", "boi_token", "eoi_token", "image_wrapper_token", "eof_token")
    tokenizer = build_tokenizer(world_corpus(seed), EMU3_SPECIAL + visual, dict(zip(names, EMU3_SPECIAL[3:8],
                                                                                    strict=True)))
    processor = Emu3Processor(Emu3ImageProcessor(min_pixels=IMAGE_SIZE ** 2, max_pixels=IMAGE_SIZE ** 2,
                                                 spatial_factor=8, image_mean=[0.5] * 3, image_std=[0.5] * 3),
                              tokenizer)
    vocab = tokenizer.get_vocab()
    config = Emu3Config(
        vq_config=Emu3VQVAEConfig(codebook_size=codes, embed_dim=8, latent_channels=8, base_channels=32,
                                  channel_multiplier=[1, 1, 1, 1], num_res_blocks=1, attn_resolutions=[],
                                  hidden_size=32, num_attention_heads=1),
        text_config=Emu3TextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                                   num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                   bos_token_id=0, eos_token_id=1, pad_token_id=2),
        vocabulary_map=vocab)
    torch.manual_seed(seed)
    model = Emu3ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=1, pad_token_id=2, guidance_scale=2.0)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def build_tiny_showo(out_dir: Path, seed: int = 0, hidden: int = 64, layers: int = 2, codebook_bits: int = 6,
                     weights: str = "pytorch_model.safetensors") -> Path:
    """Save a randomly initialised tiny Show-o as a bundle in the official layout: showo/ (config.json with
    `_class_name: "Showo"`, weights under `showo.`), magvitv2/ (MAGVIT-v2 weights; its config.json gives the tiny
    sizes) and tokenizer/ (a phi-style byte-level BPE whose only special token is <|endoftext|>, and the Phi
    config). 32x32 images make a 4x4 grid of 2**codebook_bits codes."""
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=train_bpe(world_corpus(seed), ["<|endoftext|>"]),
                                        bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                        unk_token="<|endoftext|>")  # no post-processor: phi adds no <bos>
    llm_vocab = len(tokenizer)
    llm = PhiConfig(vocab_size=llm_vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                    num_attention_heads=4, partial_rotary_factor=0.5, max_position_embeddings=512,
                    bos_token_id=0, eos_token_id=0, qk_layernorm=False)  # Show-o turns QK LayerNorm on itself
    codes = 2 ** codebook_bits
    vocab_size = llm_vocab + NEW_TOKENS + codes + 1
    coder = {"ch": 32, "ch_mult": [1, 1, 1, 2], "num_res_blocks": [1, 1, 1, 1], "attn_resolutions": [8],
             "resolution": IMAGE_SIZE, "z_channels": codebook_bits}
    torch.manual_seed(seed)
    magvit = build_magvit(MagvitSizes.from_config({"encoder": coder, "decoder": coder}), "cpu")
    network = build_network(phi_config(llm, vocab_size), "cpu")
    showo = {"_class_name": "Showo", "_diffusers_version": "0.30.1", "w_clip_vit": False, "vocab_size": vocab_size,
             "llm_vocab_size": llm_vocab, "llm_model_path": "microsoft/phi-1_5", "codebook_size": codes,
             "num_vq_tokens": (IMAGE_SIZE // 8) ** 2, "load_from_showo": False, "mask_token_id": vocab_size - 1}
    for part, module, config, name in (
            ("showo", network, showo, weights),
            ("magvitv2", magvit, {"_class_name": "MAGVITv2", "_diffusers_version": "0.30.1", "encoder": coder,
                                  "decoder": coder}, "pytorch_model.safetensors")):
        (out_dir / part).mkdir(parents=True, exist_ok=True)
        (out_dir / part / "config.json").write_text(json.dumps(config, indent=2))
        state = {k: v.contiguous() for k, v in module.state_dict().items()}
        if name.endswith(".bin"):
            torch.save(state, out_dir / part / name)
        else:
            save_file(state, out_dir / part / name, metadata={"format": "pt"})
    tokenizer.save_pretrained(out_dir / "tokenizer")
    llm.save_pretrained(out_dir / "tokenizer")
    return out_dir
