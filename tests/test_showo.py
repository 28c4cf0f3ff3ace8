"""Show-o through the same interface as Janus and Emu3: a tiny Show-o in the official checkpoint layout, built
offline and loaded through --model; the real-size key layout; Show-o's masks, MaskGIT schedule and DPO mask."""

import json
import math
import shutil

import pytest
import torch
from cli_runs import eval_and_align
from safetensors.torch import load_file, save_file
from transformers import PhiConfig

from hermes_bench.align.data import shapes_records
from hermes_bench.align.trainer import PairLogProbs, TrainingConfig, reference_logprobs, step_loss
from hermes_bench.errors import HermesBenchError
from hermes_bench.models import load_model
from hermes_bench.models.magvitv2 import MagvitSizes
from hermes_bench.models.showo import ShowoModel, build_magvit, build_network, find_parts, phi_config
from hermes_bench.models.showo_prompting import (
    ShowoVocab,
    dpo_image_mask,
    left_pad,
    maskgit_generate,
    mmu_attention_mask,
    t2i_attention_mask,
    t2i_ids,
)

PROMPTS = ["<image>Describe the image in one sentence.", "<image>Is there a red circle? Please answer yes or no."]
VOCAB = ShowoVocab(pad=90, soi=91, eoi=92, t2i=94, mmu=95, bos=1, eos=1, image_offset=100, codebook_size=8, mask=108)


@pytest.fixture(scope="module")
def showo(tiny_showo):
    return load_model(str(tiny_showo), "cpu")


@pytest.fixture(scope="module")
def images():
    return [r.image for r in shapes_records(4, seed=3)]


# loading


def test_the_family_comes_from_the_bundle_and_tokens_land_where_the_checkpoint_expects(showo, tiny_showo):
    assert isinstance(showo, ShowoModel)
    config = json.loads((tiny_showo / "showo" / "config.json").read_text())
    assert config["_class_name"] == "Showo" and "model_type" not in config
    v = showo.vocab
    assert (v.pad, v.soi, v.eoi, v.t2i, v.mmu) == tuple(config["llm_vocab_size"] + i for i in (0, 1, 2, 5, 6))
    assert v.image_offset == config["llm_vocab_size"] + 10 and v.mask == config["vocab_size"] - 1
    assert showo.resolution == 32 and showo.num_vq_tokens == 16
    assert all(m.self_attn.qk_layernorm for m in showo.network.showo.model.layers)  # forced on, config says off


def test_a_checkpoint_folder_takes_its_language_model_from_llm_model_path(tiny_showo):
    parts = find_parts(str(tiny_showo / "showo"))
    assert (parts.showo, parts.magvit, parts.llm) == (str(tiny_showo / "showo"), "showlab/magvitv2",
                                                      "microsoft/phi-1_5")


def test_training_script_bin_weights_load_the_same(tiny_showo, tmp_path, showo):
    copy = tmp_path / "bin"
    shutil.copytree(tiny_showo, copy)
    state = load_file(copy / "showo" / "pytorch_model.safetensors")
    (copy / "showo" / "pytorch_model.safetensors").unlink()
    torch.save(state, copy / "showo" / "pytorch_model.bin")
    again = load_model(str(copy), "cpu")
    ids = torch.tensor([[VOCAB.bos, 5, 6, 7]])
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool).tril()
    assert torch.equal(again.logits(ids, mask), showo.logits(ids, mask))


def test_a_key_mismatch_names_the_part_and_the_keys(tiny_showo, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_showo, broken)
    state = load_file(broken / "magvitv2" / "pytorch_model.safetensors")
    state["quantize.extra"] = state.pop("quantize.power_vals")
    save_file(state, broken / "magvitv2" / "pytorch_model.safetensors")
    with pytest.raises(HermesBenchError, match=r"MAGVIT-v2 .*missing keys quantize\.power_vals; unexpected keys "
                                               r"quantize\.extra"):
        load_model(str(broken), "cpu")
    shutil.rmtree(broken / "tokenizer")
    with pytest.raises(HermesBenchError, match=r"lacks tokenizer/config\.json"):
        load_model(str(broken), "cpu")


class _RunsCode:
    def __reduce__(self):
        return (print, ("this pickle ran code",))


def test_a_bin_that_would_run_code_is_refused_not_run(tiny_showo, tmp_path, capsys):
    planted = tmp_path / "planted"
    shutil.copytree(tiny_showo, planted)
    (planted / "showo" / "pytorch_model.safetensors").unlink()
    torch.save({"x": _RunsCode()}, planted / "showo" / "pytorch_model.bin")
    with pytest.raises(HermesBenchError, match="refuses to load"):
        load_model(str(planted), "cpu")
    assert "this pickle ran code" not in capsys.readouterr().out


def test_clip_vit_checkpoints_are_refused_in_one_line(tiny_showo, tmp_path):
    clip = tmp_path / "clip"
    shutil.copytree(tiny_showo, clip)
    config = json.loads((clip / "showo" / "config.json").read_text())
    (clip / "showo" / "config.json").write_text(json.dumps({**config, "w_clip_vit": True}))
    with pytest.raises(HermesBenchError, match="w_clip_vit"):
        load_model(str(clip), "cpu")


# the real-size layout, written from the official code (models/phi.py, modeling_showo.py, modeling_magvitv2.py)

PHI_1_5 = PhiConfig(vocab_size=51200, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                    num_attention_heads=32, partial_rotary_factor=0.5, hidden_act="gelu_new", layer_norm_eps=1e-5,
                    max_position_embeddings=2048, qk_layernorm=False, tie_word_embeddings=False)


def official_showo_keys(vocab=58498, hidden=2048, layers=24, heads=32, inner=8192):
    keys = {"showo.model.embed_tokens.weight": (vocab, hidden), "showo.model.final_layernorm.weight": (hidden,),
            "showo.model.final_layernorm.bias": (hidden,), "showo.lm_head.weight": (vocab, hidden),
            "showo.lm_head.bias": (vocab,)}
    for i in range(layers):
        layer = f"showo.model.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "dense"):
            keys |= {f"{layer}self_attn.{proj}.weight": (hidden, hidden), f"{layer}self_attn.{proj}.bias": (hidden,)}
        for norm in ("q_layernorm", "k_layernorm"):
            keys |= {f"{layer}self_attn.{norm}.{p}": (hidden // heads,) for p in ("weight", "bias")}
        keys |= {f"{layer}mlp.fc1.weight": (inner, hidden), f"{layer}mlp.fc1.bias": (inner,),
                 f"{layer}mlp.fc2.weight": (hidden, inner), f"{layer}mlp.fc2.bias": (hidden,),
                 f"{layer}input_layernorm.weight": (hidden,), f"{layer}input_layernorm.bias": (hidden,)}
    return keys


def _resnet(prefix, cin, cout):
    keys = {f"{prefix}norm1.weight": (cin,), f"{prefix}norm1.bias": (cin,), f"{prefix}conv1.weight": (cout, cin, 3, 3),
            f"{prefix}conv1.bias": (cout,), f"{prefix}norm2.weight": (cout,), f"{prefix}norm2.bias": (cout,),
            f"{prefix}conv2.weight": (cout, cout, 3, 3), f"{prefix}conv2.bias": (cout,)}
    if cin != cout:
        keys |= {f"{prefix}nin_shortcut.weight": (cout, cin, 1, 1), f"{prefix}nin_shortcut.bias": (cout,)}
    return keys


def _conv(name, cout, cin, k):
    return {f"{name}.weight": (cout, cin, k, k), f"{name}.bias": (cout,)}


def _middle(prefix, c):
    keys = _resnet(f"{prefix}mid.block_1.", c, c) | _resnet(f"{prefix}mid.block_2.", c, c)
    keys |= {f"{prefix}mid.attn_1.norm.weight": (c,), f"{prefix}mid.attn_1.norm.bias": (c,)}
    for name in ("q", "k", "v", "proj_out"):
        keys |= _conv(f"{prefix}mid.attn_1.{name}", c, c, 1)
    return keys


def official_magvit_keys(ch=128, z=13):
    keys = _conv("encoder.conv_in", ch, 3, 3)
    enc_mult, enc_blocks = (1, 2, 2, 4, 4), (4, 3, 4, 3, 4)
    block_in = ch
    for i, (mult, blocks) in enumerate(zip(enc_mult, enc_blocks, strict=True)):
        block_in = ch * (1, *enc_mult)[i]
        for j in range(blocks):
            keys |= _resnet(f"encoder.down.{i}.block.{j}.", block_in, ch * mult)
            block_in = ch * mult
        if i != 4:
            keys |= _conv(f"encoder.down.{i}.downsample.conv", block_in, block_in, 3)
    keys |= _middle("encoder.", block_in)
    keys |= {"encoder.norm_out.weight": (block_in,), "encoder.norm_out.bias": (block_in,)}
    keys |= _conv("encoder.conv_out", z, block_in, 3) | _conv("encoder.quant_conv", z, z, 1)
    dec_mult, dec_blocks = (1, 1, 2, 2, 4), (4, 4, 3, 4, 3)
    block_in = ch * dec_mult[-1]
    keys |= _conv("decoder.conv_in", block_in, z, 3) | _middle("decoder.", block_in)
    for i in reversed(range(5)):
        for j in range(dec_blocks[i]):
            keys |= _resnet(f"decoder.up.{i}.block.{j}.", block_in, ch * dec_mult[i])
            block_in = ch * dec_mult[i]
        if i != 0:
            keys |= _conv(f"decoder.up.{i}.upsample.conv", block_in, block_in, 3)
    keys |= {"decoder.norm_out.weight": (block_in,), "decoder.norm_out.bias": (block_in,)}
    keys |= _conv("decoder.conv_out", 3, block_in, 3) | _conv("decoder.post_quant_conv", z, z, 1)
    return keys | {"quantize.embedding": (2 ** z, z), "quantize.power_vals": (z,)}


def test_magvit_sizes_are_the_official_vqgan_arguments():
    sizes = MagvitSizes.from_config({"encoder": {"ch": 64, "ch_mult": [1, 2], "dropout": 0.0}})
    assert (sizes.encoder.ch, sizes.encoder.ch_mult, sizes.decoder) == (64, (1, 2), MagvitSizes().decoder)
    with pytest.raises(HermesBenchError, match="unknown sizes channels"):
        MagvitSizes.from_config({"decoder": {"channels": 64}})


def test_real_size_show_o_512_and_magvit_v2_have_the_official_keys_and_shapes():
    network = build_network(phi_config(PHI_1_5, 58498), "meta")
    assert {k: tuple(v.shape) for k, v in network.state_dict().items()} == official_showo_keys()
    magvit = build_magvit(MagvitSizes(), "meta")  # the official config.json carries no sizes: the defaults
    assert {k: tuple(v.shape) for k, v in magvit.state_dict().items()} == official_magvit_keys()
    assert all(p.is_meta for p in network.parameters())  # nothing allocated


# masks and samplers


def rows(mask):
    return ["".join("x" if v else "." for v in row) for row in mask[0, 0].tolist()]


def test_the_t2i_omni_attention_mask():
    ids = t2i_ids([[5]], torch.tensor([[100, VOCAB.mask]]), VOCAB, max_text_len=5)
    # [PAD]* <|t2i|> <bos> text <eos> <|soi|> image <|eoi|>
    assert ids.tolist() == [[90, 90, 94, 1, 5, 1, 91, 100, 108, 92]]
    assert rows(t2i_attention_mask(ids, VOCAB)) == [
        "x.........",  # padding: causal among itself
        "xx........",
        "..x.......",  # text: causal, never the padding
        "..xx......",
        "..xxx.....",
        "..xxxx....",
        "..xxxxxxxx",  # <|soi|>, the image and <|eoi|>: every non-pad position
        "..xxxxxxxx",
        "..xxxxxxxx",
        "..xxxxxxxx"]


def test_long_t2i_text_is_cut_keeping_its_closing_eos():
    ids = t2i_ids([[5, 6, 7, 8, 9, 10]], torch.tensor([[100]]), VOCAB, max_text_len=5)
    assert ids[0, :6].tolist() == [94, 1, 5, 6, 7, 1]


def test_the_mmu_mask_and_left_padding():
    prompt = [VOCAB.mmu, VOCAB.soi, 100, 101, VOCAB.eoi, VOCAB.bos, 7]
    ids, real = left_pad([prompt, prompt[:-1]], VOCAB.pad)
    mask = mmu_attention_mask(ids, real, VOCAB)
    assert rows(mask[:1]) == [
        "xxxxx..",  # <|mmu|> <|soi|> image <|eoi|>: seen by every row, so the image prefix is bidirectional
        "xxxxx..",
        "xxxxx..",
        "xxxxx..",
        "xxxxx..",
        "xxxxxx.",  # then causal
        "xxxxxxx"]
    assert rows(mask[1:]) == ["x......", ".xxxxx.", ".xxxxx.", ".xxxxx.", ".xxxxx.", ".xxxxx.", ".xxxxxx"]


def test_maskgit_unmasks_on_the_cosine_schedule_and_never_remasks_a_kept_token():
    n, steps, vocab_size = 16, 6, VOCAB.mask + 1
    ids = t2i_ids([[5], [6]], torch.full((2, n), VOCAB.mask), VOCAB, max_text_len=5)
    seen = []
    generator = torch.Generator().manual_seed(0)

    def logits_fn(batch, _mask):
        seen.append(batch[:, -(n + 1):-1].clone())
        return torch.randn(batch.shape[0], batch.shape[1], vocab_size, generator=generator)

    codes = maskgit_generate(logits_fn, ids, None, t2i_attention_mask(ids, VOCAB), VOCAB, 0.0, steps,
                             generator=generator, max_text_len=5)
    seen.append(None)
    unknown = n
    for step in range(steps - 1):
        ratio = torch.cos(torch.tensor((step + 1) / steps) * math.pi * 0.5)  # float32, as the official: 16 * cos(pi/3)
        scheduled = max(1, min(unknown - 1, int((n * ratio).floor())))  # is 7.9999995, so 7 stay masked, not 8
        before, after = seen[step], seen[step + 1]
        assert ((after == VOCAB.mask).sum(1) == scheduled).all()
        kept = before != VOCAB.mask
        assert torch.equal(after[kept], before[kept])
        unknown = scheduled
    final = seen[steps - 1]
    assert torch.equal((codes + VOCAB.image_offset)[final != VOCAB.mask], final[final != VOCAB.mask])
    assert codes.shape == (2, n) and int(codes.max()) < VOCAB.codebook_size


def test_the_dpo_mask_is_a_function_of_its_key():
    first = dpo_image_mask("record-3 round 1 seed 0", 64)
    assert torch.equal(first, dpo_image_mask("record-3 round 1 seed 0", 64))
    masks = [dpo_image_mask(f"record-{i} round 1 seed 0", 64) for i in range(40)]
    counts = {int(m.sum()) for m in masks}
    assert min(counts) >= 1 and len(counts) > 10  # one mask ratio cos(pi t / 2) drawn per record


# the model interface


def test_greedy_answers_are_the_teacher_forced_argmax_and_ignore_padding(showo, images):
    batch = [[images[0]], [images[1]]]
    ids = showo.answer_ids(PROMPTS, batch, max_new_tokens=6)
    alone = [showo.answer_ids([p], [ims], max_new_tokens=6)[0] for p, ims in zip(PROMPTS, batch, strict=True)]
    assert ids == alone  # a padded row (cached decoding) answers as it would alone
    rows_ = showo._mmu_rows(PROMPTS, batch)  # <|mmu|> <|soi|> 16 image ids <|eoi|> <bos> USER: ...
    assert rows_[0][:2] == [showo.vocab.mmu, showo.vocab.soi] and rows_[0][18:20] == [showo.vocab.eoi, showo.vocab.bos]
    # the full forward, teacher-forced on the cached decoding's tokens, picks the same tokens greedily
    logits, targets, mask = showo.answer_token_logits(PROMPTS, batch, ids)
    assert torch.equal(logits.argmax(-1)[mask.bool()], targets[mask.bool()])
    assert showo.answer(PROMPTS, batch, max_new_tokens=6) == [showo._decode_text(row) for row in ids]


def test_log_probs_do_not_depend_on_padding_or_batching(showo, images):
    answers = ["a red circle and two blue squares", "yes"]
    batch = showo.answer_logprobs(PROMPTS, [[images[0]], [images[1]]], answers)
    alone = torch.cat([showo.answer_logprobs(PROMPTS[:1], [[images[0]]], answers[:1]),
                       showo.answer_logprobs(PROMPTS[1:], [[images[1]]], answers[1:])])
    assert torch.allclose(batch, alone, atol=1e-4)
    codes = showo.image_tokens(images[:2])
    captions = ["a red circle", "two blue squares and a green triangle"]
    batch = showo.image_logprobs(captions, codes, torch.tensor([False, True]), ["k1", "k2"])
    alone = torch.cat([showo.image_logprobs(captions[:1], codes[:1], keys=["k1"]),
                       showo.image_logprobs(captions[1:], codes[1:], torch.tensor([True]), ["k2"])])
    assert torch.allclose(batch, alone, atol=1e-4)


def test_image_log_probs_sum_over_the_masked_positions_only(showo, images):
    codes = showo.image_tokens(images[:1])
    logits, targets, scored = showo.image_logits(["a red circle"], codes, keys=["k"])
    assert torch.equal(scored[0].bool(), dpo_image_mask("k", 16))
    expected = logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0][scored.bool()].sum()
    assert showo.image_logprobs(["a red circle"], codes, keys=["k"]).item() == pytest.approx(expected.item(), abs=1e-5)


def test_images_follow_the_seed_and_round_trip_through_magvit(showo):
    first = showo.generate_image_tokens(["a red circle"], 2, 1.75, seed=5)
    assert torch.equal(first, showo.generate_image_tokens(["a red circle"], 2, 1.75, seed=5))
    assert first.shape == (2, 16)
    pictures = showo.decode_images(first)
    assert [im.size for im in pictures] == [(32, 32)] * 2
    assert showo.decode_pixels(first).shape == (2, 3, 32, 32)


def test_one_pair_dpo_step_and_save_reload(showo, tmp_path, images):
    records = shapes_records(2, seed=8)
    codes = showo.image_tokens([r.image for r in records])
    pairs = {r.id: {"understanding": {"win": r.caption, "lose": "a purple triangle"},
                    "generation": {"win": codes[i].tolist(), "lose": codes[1 - i].tolist()}}
             for i, r in enumerate(records)}
    config = TrainingConfig(round=2)
    refs = reference_logprobs(showo, {r.id: r for r in records}, pairs, "pair", mask_key=config.mask_key)
    loss, _stats = step_loss(PairLogProbs(showo, "pair", config.mask_key), records, [pairs[r.id] for r in records],
                             [refs[r.id] for r in records], torch.tensor([False, True]), config)
    loss.backward()  # the reference is the policy, under the same masks: every margin is 0
    assert loss.item() == pytest.approx(2 * math.log(2.0), abs=1e-4)
    grads = [p.grad for p in showo.module.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    showo.module.zero_grad()
    showo.save(tmp_path / "saved")
    again = load_model(str(tmp_path / "saved"), "cpu")
    ids = t2i_ids([[5]], torch.full((1, 16), showo.vocab.mask), showo.vocab)
    mask = t2i_attention_mask(ids, showo.vocab)
    assert torch.equal(again.logits(ids, mask), showo.logits(ids, mask))
    assert torch.equal(again.image_tokens(images[:2]), showo.image_tokens(images[:2]))


@pytest.mark.slow
def test_eval_and_align_through_model_dir(tiny_showo, tmp_path):
    # a random model's images seldom pass the pair filter (best image above 0.6): curate from more of them
    run, rounds = eval_and_align(tiny_showo, tmp_path, records=24, images=8)
    assert run["model"]["family"] == "ShowoModel"
    assert set(run["headlines"]) == {"shapes_pope", "shapes_mme", "shapes_geneval"}
    assert rounds["rounds"][0]["pairs_generation"] > 0
    assert (tmp_path / "align" / "round-1" / "beta-0.5" / "model" / "showo" / "config.json").is_file()
