import os
import random
from pathlib import Path

import pytest
import torch

from hermes_bench.models.tiny import build_tiny_emu3, build_tiny_janus
from hermes_bench.world import language
from hermes_bench.world.scene import sample_scene


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """The embedded model is built into a per-session cache, never the user's."""
    os.environ["HERMES_BENCH_CACHE"] = str(tmp_path_factory.mktemp("hermes-cache"))


@pytest.fixture(scope="session")
def tiny_janus(tmp_path_factory) -> Path:
    """A tiny Janus saved with save_pretrained, loaded back through the real from_pretrained path."""
    return build_tiny_janus(tmp_path_factory.mktemp("tiny-janus"), seed=1)


@pytest.fixture(scope="session")
def tiny_emu3(tmp_path_factory) -> Path:
    """A tiny Emu3 (tokenizer with visual tokens, processor, VQ) saved with save_pretrained."""
    return build_tiny_emu3(tmp_path_factory.mktemp("tiny-emu3"), seed=1)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A tiny BERT (random weights, a word-level vocabulary) saved and loaded through from_pretrained."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("bert")
    words = sorted({w for s in (language.caption(sample_scene(random.Random(i))) for i in range(200))
                    for w in s.replace(",", " ").split()} | {"yes", "no", "it", "is", "red", "blue", "maybe"})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]").save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    return folder
