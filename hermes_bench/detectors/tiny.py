"""Tiny random Mask2Former and CLIP, and random FID Inception weights, built offline in the real formats, for tests
and benchmarks of the GenEval and coco30k scoring paths (the real checkpoints cannot be downloaded here)."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizerFast,
    Mask2FormerConfig,
    Mask2FormerForUniversalSegmentation,
    SwinConfig,
)
from transformers.models.clip.configuration_clip import CLIPTextConfig, CLIPVisionConfig
from transformers.models.mask2former.image_processing_pil_mask2former import Mask2FormerImageProcessorPil

from hermes_bench.detectors.mask2former import COLORS, GENEVAL_CLASSES, TEMPLATES
from hermes_bench.scoring.fid_inception import FIDInception


def build_tiny_mask2former(out_dir: Path, seed: int = 0, image_size: int = 64) -> Path:
    torch.manual_seed(seed)
    backbone = SwinConfig(image_size=image_size, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1],
                          num_heads=[1, 1, 2, 2], window_size=4, out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, num_labels=len(GENEVAL_CLASSES), hidden_dim=32,
                               feature_size=32, mask_feature_size=32, num_queries=20, encoder_layers=1,
                               decoder_layers=2, num_attention_heads=2, dim_feedforward=64,
                               encoder_feedforward_dim=64, common_stride=4,
                               id2label=dict(enumerate(GENEVAL_CLASSES)),
                               label2id={c: i for i, c in enumerate(GENEVAL_CLASSES)})
    Mask2FormerForUniversalSegmentation(config).save_pretrained(out_dir)
    Mask2FormerImageProcessorPil(size={"shortest_edge": image_size, "longest_edge": image_size},
                                 do_reduce_labels=False).save_pretrained(out_dir)
    return out_dir


def build_tiny_clip(out_dir: Path, seed: int = 0, image_size: int = 32, max_positions: int = 32) -> Path:
    corpus = [t.format(c=c, cls=cls) for t in TEMPLATES for c in COLORS for cls in GENEVAL_CLASSES]
    tk = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<|startoftext|>",
                                                                                        "<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = CLIPTokenizerFast(tokenizer_object=tk, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=max_positions,
                                   bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=image_size, patch_size=8),
        projection_dim=16)
    CLIPModel(config).save_pretrained(out_dir)
    CLIPProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                                        crop_size={"height": image_size, "width": image_size}),
                  tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


def build_random_fid_inception(path: Path, seed: int = 0) -> Path:
    """The FID Inception's weights file (a plain state dict, the real one's keys) with random weights whose features
    still tell images apart: He-scaled convolutions, batch-norm statistics near the identity."""
    generator = torch.Generator().manual_seed(seed)
    state = FIDInception().state_dict()
    for name, value in state.items():
        if name.endswith("running_var"):
            value.copy_(torch.rand(value.shape, generator=generator) * 0.2 + 0.9)
        elif name.endswith(("running_mean", "bn.bias")):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.05)
        elif name.endswith("bn.weight"):
            value.copy_(1 + torch.randn(value.shape, generator=generator) * 0.05)
        elif value.dim() == 4:
            value.copy_(torch.randn(value.shape, generator=generator) * (2 / value[0].numel()) ** 0.5)
    torch.save(state, path)
    return path
