"""A tiny Janus for the shapes world, built offline: a BPE tokenizer trained on the world's words, a
32x32 image processor, a VQ with a 4x4 token grid, and a two-layer Llama. Tests and the embedded default use it."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GenerationConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusImageProcessorPil,
    JanusProcessor,
    LlamaConfig,
    PreTrainedTokenizerFast,
)
from transformers.models.janus.configuration_janus import JanusVisionConfig, JanusVQVAEConfig

from hermes_bench.world import language
from hermes_bench.world.benchmarks import POPE_SPLITS, geneval_metadata
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


def build_tokenizer(corpus: list[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.post_processor = processors.TemplateProcessing(single=f"{SPECIAL[BOS]} $A",
                                                      special_tokens=[(SPECIAL[BOS], BOS)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token=SPECIAL[BOS], eos_token=SPECIAL[EOS], pad_token=SPECIAL[PAD],
        padding_side="left", extra_special_tokens={"image_token": SPECIAL[IMAGE], "boi_token": SPECIAL[BOI],
                                                   "eoi_token": SPECIAL[EOI]})


def tiny_janus(seed: int = 0, hidden: int = 64, layers: int = 2, vision_layers: int | None = None,
               guidance_scale: float = 2.0) -> tuple[JanusForConditionalGeneration, JanusProcessor]:
    """A randomly initialised tiny Janus and its processor: 32x32 images, a 4x4 grid of image tokens."""
    tokenizer = build_tokenizer(world_corpus(seed))
    patch = 8
    processor = JanusProcessor(
        JanusImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=[0.5] * 3,
                               image_std=[0.5] * 3),
        tokenizer, num_image_tokens=(IMAGE_SIZE // patch) ** 2)
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
    model.generation_config = GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
                                               generation_kwargs={"boi_token_id": BOI},
                                               guidance_scale=guidance_scale)
    return model, processor


def build_tiny_janus(out_dir: Path, seed: int = 0, hidden: int = 64, layers: int = 2,
                     guidance_scale: float = 2.0) -> Path:
    """Save a randomly initialised tiny Janus (model + processor) to out_dir with save_pretrained."""
    model, processor = tiny_janus(seed, hidden, layers, guidance_scale=guidance_scale)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
