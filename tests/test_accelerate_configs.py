"""The accelerate configs we ship parse as `accelerate launch` reads them, and FSDP finds its shard units in the
module the trainer prepares, for every family."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

from hermes_bench.align.trainer import PairLogProbs
from hermes_bench.models import load_model

CONFIGS = Path(__file__).parent.parent / "configs" / "accelerate"


@pytest.mark.parametrize(("name", "engine", "processes"), [
    ("1gpu.yaml", DistributedType.NO, 1), ("8gpu_ddp.yaml", DistributedType.MULTI_GPU, 8),
    ("8gpu_fsdp.yaml", DistributedType.FSDP, 8), ("8gpu_zero2.yaml", DistributedType.DEEPSPEED, 8)])
def test_each_config_is_what_accelerate_launch_reads(name, engine, processes):
    config = load_config_from_file(str(CONFIGS / name))  # unknown keys are an error here
    assert (config.distributed_type, config.num_processes, config.mixed_precision) == (engine, processes, "bf16")


@pytest.mark.parametrize("family", ["janus", "emu3", "showo"])
def test_fsdp_wraps_each_familys_decoder_layers(family, tiny_janus, tiny_emu3, tiny_showo):
    source = {"janus": tiny_janus, "emu3": tiny_emu3, "showo": tiny_showo}[family]
    fsdp = load_config_from_file(str(CONFIGS / "8gpu_fsdp.yaml")).fsdp_config
    names = {"fsdp_version": "fsdp_version", "fsdp_offload_params": "cpu_offload"}  # as `accelerate launch` maps
    plugin = FullyShardedDataParallelPlugin(**{names.get(k, k.removeprefix("fsdp_")): v for k, v in fsdp.items()})
    policy = PairLogProbs(load_model(str(source), "cpu", "float32"), "pair", "k")
    plugin.set_auto_wrap_policy(policy)
    layers = {"janus": "LlamaDecoderLayer", "emu3": "Emu3DecoderLayer", "showo": "PhiDecoderLayer"}[family]
    assert layers in {cls.__name__ for cls in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]}
