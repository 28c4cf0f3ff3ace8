"""Emu3 through the same interface as Janus: a tiny Emu3 built offline, evaluated and aligned through --model."""


import pytest
import torch
from cli_runs import eval_and_align

from hermes_bench.align.data import shapes_records
from hermes_bench.align.trainer import PairLogProbs, TrainingConfig, reference_logprobs, step_loss
from hermes_bench.models import load_model
from hermes_bench.models.emu3 import Emu3Model

PROMPTS = ["<image>Describe the image in one sentence.", "<image>Is there a red circle? Please answer yes or no."]


@pytest.fixture(scope="module")
def emu3(tiny_emu3):
    return load_model(str(tiny_emu3), "cpu")


@pytest.fixture(scope="module")
def images():
    return [r.image for r in shapes_records(4, seed=3)]


def test_the_family_comes_from_config_json(emu3):
    assert isinstance(emu3, Emu3Model)


def test_greedy_answers_are_the_teacher_forced_argmax(emu3, images):
    inputs = emu3.understanding_inputs(PROMPTS, [[images[0]], [images[1]]])
    assert (inputs.attention_mask == 0).any()  # the shorter prompt is padded
    out = emu3.model.generate(**inputs, do_sample=False, max_new_tokens=6, min_new_tokens=6, guidance_scale=None)
    generated = out[:, inputs.input_ids.shape[1]:]
    logits, _targets, mask = emu3.answer_token_logits(inputs, generated.tolist())
    assert mask.all() and torch.equal(logits.argmax(-1), generated)


def test_greedy_image_codes_are_the_teacher_forced_argmax(emu3):
    emu3.model.generation_config.top_k = 1  # sampling from the top token only: greedy
    try:
        codes = emu3.generate_image_tokens(["a red circle", "two blue squares and a green triangle"], 2, 1.0, seed=0)
    finally:
        emu3.model.generation_config.top_k = None
    assert codes.shape == (4, 16)
    logits, _targets, is_code = emu3.image_logits(["a red circle"] * 2 + ["two blue squares and a green triangle"] * 2,
                                                 codes)
    assert is_code.sum(1).tolist() == [16] * 4  # 4 rows of 4 codes, each row closed by an end-of-row token
    picked = logits.argmax(-1)[is_code.bool()].view(4, 16)
    assert torch.equal(emu3.model.vocabulary_mapping.bpe2img_mapping_tensor[picked].long(), codes)


def test_log_probs_do_not_depend_on_padding(emu3, images):
    answers = ["a red circle and two blue squares", "yes"]
    batch = emu3.answer_logprobs(PROMPTS, [[images[0]], [images[1]]], answers)
    alone = torch.cat([emu3.answer_logprobs(PROMPTS[:1], [[images[0]]], answers[:1]),
                       emu3.answer_logprobs(PROMPTS[1:], [[images[1]]], answers[1:])])
    assert torch.allclose(batch, alone, atol=1e-4)
    codes = emu3.image_tokens(images[:2])
    captions = ["a red circle", "two blue squares and a green triangle"]
    batch = emu3.image_logprobs(captions, codes, torch.tensor([False, True]))
    alone = torch.cat([emu3.image_logprobs(captions[:1], codes[:1]),
                       emu3.image_logprobs(captions[1:], codes[1:], torch.tensor([True]))])
    assert torch.allclose(batch, alone, atol=1e-4)


def test_sampled_images_decode_and_follow_the_seed(emu3):
    first = emu3.generate_images(["a red circle"], 2, 2.0, seed=5)
    again = emu3.generate_images(["a red circle"], 2, 2.0, seed=5)
    assert [im.size for im in first[0]] == [(32, 32)] * 2
    assert [im.tobytes() for im in first[0]] == [im.tobytes() for im in again[0]]


def test_one_pair_dpo_step(emu3, tmp_path):
    records = shapes_records(2, seed=8)
    codes = emu3.image_tokens([r.image for r in records])
    pairs = {r.id: {"understanding": {"win": r.caption, "lose": "a purple triangle"},
                    "generation": {"win": codes[i].tolist(), "lose": codes[1 - i].tolist()}}
             for i, r in enumerate(records)}
    refs = reference_logprobs(emu3, {r.id: r for r in records}, pairs, "pair")
    config = TrainingConfig()
    loss, _stats = step_loss(PairLogProbs(emu3, "pair", config.mask_key), records, [pairs[r.id] for r in records],
                             [refs[r.id] for r in records], torch.tensor([False, True]), config)
    loss.backward()
    assert loss.item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item(), abs=1e-4)
    grads = [p.grad for n, p in emu3.module.named_parameters() if "vqmodel" not in n and p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    emu3.module.zero_grad()


@pytest.mark.slow
def test_eval_and_align_through_model_dir(tiny_emu3, tmp_path):
    run, rounds = eval_and_align(tiny_emu3, tmp_path)
    assert run["model"]["family"] == "Emu3Model"
    assert set(run["headlines"]) == {"shapes_pope", "shapes_mme", "shapes_geneval"}
    assert rounds["rounds"][0]["pairs_generation"] > 0
    assert (tmp_path / "align" / "round-1" / "beta-0.5" / "model" / "config.json").is_file()
