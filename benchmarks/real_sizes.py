"""The published configurations of the models hermes-bench aligns, for the speed and memory scripts (random
weights: no hub here). Torch + transformers only, so the GPU script runs where only those are installed.

Sources, read on 2026-12-03:
- Janus-Pro vision encoder and VQ: transformers 5.24's JanusVisionConfig / JanusVQVAEConfig defaults, documented as
  the deepseek-community/Janus-Pro-1B configuration (SigLIP-L/16 at 384 px, 576 image tokens; VQ-16 with 16,384
  codes of 8 dims, channels 128 x [1, 1, 2, 2, 4]).
- Janus-Pro-1B language model: DeepSeek-LLM 1.5B (hidden 2048, MLP 5632, 24 layers, 16 heads, vocab 102,400,
  16,384 positions), the text config in transformers' DeepSeek-VL conversion script for the same LLM.
- Janus-Pro-7B language model: DeepSeek-LLM 7B (hidden 4096, MLP 11008, 30 layers, 32 heads, vocab 102,400).
- Emu3 8B: transformers 5.24's Emu3TextConfig defaults, documented as Emu3-community/Emu3-Chat-hf (hidden 4096, MLP
  14336, 32 layers, 32 heads, 8 KV heads, vocab 184,622), and Emu3VQVAEConfig's defaults (32,768 codes); 720 px
  images are 90 x 90 tokens plus one end-of-row token a row.
- Show-o 1.3B: Phi-1.5 (hidden 2048, MLP 8192, 24 layers, 32 heads) with Show-o's vocabulary (50,295 + 10 + 8,192
  + 1 = 58,498), 1,024 image tokens at 512 px (showlab/show-o-512x512, HermesFlow).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LanguageModel:
    hidden: int
    mlp: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int


@dataclass(frozen=True)
class Vision:
    layers: int = 24
    hidden: int = 1024
    mlp: int = 4096
    tokens: int = 576


@dataclass(frozen=True)
class RealSize:
    name: str
    language: LanguageModel
    image_tokens: int  # one generated image
    prompt_tokens: int  # a typical caption prompt around the image (understanding) or before it (generation)
    vision: Vision | None = None  # a separate understanding encoder (Janus' SigLIP)
    image_vocab: int | None = None  # a separate image head's size (Janus); None: the language model's vocabulary


JANUS_PRO_1B_TEXT = LanguageModel(hidden=2048, mlp=5632, layers=24, heads=16, kv_heads=16, vocab=102400)
JANUS_PRO_7B_TEXT = LanguageModel(hidden=4096, mlp=11008, layers=30, heads=32, kv_heads=32, vocab=102400)
SHOWO_TEXT = LanguageModel(hidden=2048, mlp=8192, layers=24, heads=32, kv_heads=32, vocab=58498)
MODELS = {
    "Janus-Pro-1B": RealSize("Janus-Pro-1B", JANUS_PRO_1B_TEXT, 576, 40, Vision(), 16384),
    "Janus-Pro-7B": RealSize("Janus-Pro-7B", JANUS_PRO_7B_TEXT, 576, 40, Vision(), 16384),
    "Emu3 8B": RealSize("Emu3 8B", LanguageModel(4096, 14336, 32, 32, 8, 184622), 90 * 91, 40),
    "Show-o 1.3B": RealSize("Show-o 1.3B", SHOWO_TEXT, 1024, 130),
}


def janus_pro_config(size: str = "1B"):
    """transformers' JanusConfig for Janus-Pro-1B or -7B (the caller sets the special-token ids)."""
    from transformers import JanusConfig, LlamaConfig
    from transformers.models.janus.configuration_janus import JanusVisionConfig, JanusVQVAEConfig

    text = {"1B": JANUS_PRO_1B_TEXT, "7B": JANUS_PRO_7B_TEXT}[size]
    return JanusConfig(
        text_config=LlamaConfig(vocab_size=text.vocab, hidden_size=text.hidden, intermediate_size=text.mlp,
                                num_hidden_layers=text.layers, num_attention_heads=text.heads,
                                num_key_value_heads=text.kv_heads, max_position_embeddings=16384),
        vision_config=JanusVisionConfig(projection_dim=text.hidden),
        vq_config=JanusVQVAEConfig(projection_dim=text.hidden, image_token_embed_dim=text.hidden))


def parameters(name: str) -> int:
    """Every parameter of the model, counted on the meta device (no memory): the vision encoder, image tokenizer
    and heads included."""
    import torch

    with torch.device("meta"):
        if name.startswith("Janus-Pro"):
            from transformers import JanusForConditionalGeneration

            modules = [JanusForConditionalGeneration(janus_pro_config(name.rsplit("-", 1)[1]))]
        elif name == "Emu3 8B":
            from transformers import Emu3Config, Emu3ForConditionalGeneration

            modules = [Emu3ForConditionalGeneration(Emu3Config(vocabulary_map={"<|extra_200|>": 0}))]
        else:
            from transformers import PhiConfig

            from hermes_bench.models.magvitv2 import MagvitSizes
            from hermes_bench.models.showo import build_magvit, build_network, phi_config

            text = SHOWO_TEXT
            phi = PhiConfig(hidden_size=text.hidden, intermediate_size=text.mlp, num_hidden_layers=text.layers,
                            num_attention_heads=text.heads, partial_rotary_factor=0.5)
            modules = [build_network(phi_config(phi, text.vocab)), build_magvit(MagvitSizes())]
    return sum(p.numel() for m in modules for p in m.parameters())
