import json
import re

import pytest
import torch

from hermes_bench.embedded.release import WEIGHTS
from hermes_bench.errors import HermesBenchError
from hermes_bench.models import EMBEDDED_DIR, EMBEDDED_NAME, load_model
from hermes_bench.models.base import chat_prompt
from hermes_bench.storage import files_sha256
from hermes_bench.world.scene import IMAGE_SIZE, render, sample_scene


def test_janus_loads_from_a_saved_folder_and_does_both_jobs(tiny_janus):
    import random

    model = load_model(str(tiny_janus), device="cpu", dtype="float32")
    images = [[render(sample_scene(random.Random(i)))] for i in range(3)]
    answers = model.answer(["<image>Is there a red circle in the image?", "What is it?", "<image>Color?"],
                           images, max_new_tokens=3)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    generated = model.generate_images(["a red circle", "two blue squares"], n=3, guidance_scale=2.0, seed=4)
    assert [len(g) for g in generated] == [3, 3]
    assert generated[0][0].size == (IMAGE_SIZE, IMAGE_SIZE)
    again = model.generate_images(["a red circle", "two blue squares"], n=3, guidance_scale=2.0, seed=4)
    assert [im.tobytes() for g in generated for im in g] == [im.tobytes() for g in again for im in g]
    assert model.model_seconds > 0
    assert len(model.weights_sha256()) == 64


def test_greedy_answers_do_not_depend_on_batching(tiny_janus):
    import random

    model = load_model(str(tiny_janus), device="cpu", dtype="float32")
    prompts = ["<image>Is there a red circle in the image?", "<image>Is the square blue? Please answer yes or no."]
    images = [[render(sample_scene(random.Random(i)))] for i in range(2)]
    batched = model.answer(prompts, images, max_new_tokens=4)
    single = [model.answer([p], [im], max_new_tokens=4)[0] for p, im in zip(prompts, images, strict=True)]
    assert batched == single


def test_bf16_is_honoured(tiny_janus):
    model = load_model(str(tiny_janus), device="cpu", dtype="bfloat16")
    assert model.model.dtype == torch.bfloat16


def test_embedded_default_ships_trained_weights_whose_hash_the_model_card_records():
    model = load_model(None, device="cpu")
    assert model.name == EMBEDDED_NAME and model.path == EMBEDDED_DIR
    card = (EMBEDDED_DIR / "README.md").read_text()
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", card).group(1)
    assert model.weights_sha256() == recorded == files_sha256([EMBEDDED_DIR / WEIGHTS])
    assert (EMBEDDED_DIR / WEIGHTS).stat().st_size <= 10 * 2**20
    assert f"## Default CFG scale: {model.default_guidance_scale:g}" in card


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "nowhere", "does not exist"),
    (lambda p: p, "has no config.json"),
])
def test_missing_model_folder_is_a_clear_error(tmp_path, make, message):
    with pytest.raises(HermesBenchError, match=message):
        load_model(str(make(tmp_path)))


def test_unsupported_model_type_lists_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(HermesBenchError, match="supported types are emu3, janus"):
        load_model(str(tmp_path))


CHAT_TEMPLATE = (  # a Janus-style template: "<|User|>: ...\n\n<|Assistant|>:"
    "{% for message in messages %}<|User|>: {% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<image_placeholder>{{ '\\n' }}{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{{ '\\n\\n' }}{% endfor %}{% if add_generation_prompt %}<|Assistant|>:{% endif %}")


def test_the_chat_template_is_used_when_the_processor_has_one(tiny_janus, tmp_path):
    import random
    import shutil

    from transformers import AutoProcessor

    folder = tmp_path / "templated"
    shutil.copytree(tiny_janus, folder)
    processor = AutoProcessor.from_pretrained(folder)
    processor.chat_template = CHAT_TEMPLATE
    processor.save_pretrained(folder)
    model = load_model(str(folder), device="cpu")
    assert chat_prompt(model.processor, "<image>Is it red?", 1) == \
        "<|User|>: <image_placeholder>\nIs it red?\n\n<|Assistant|>:"
    assert chat_prompt(model.processor, "a red circle", 0, "image") == "<|User|>: a red circle\n\n<|Assistant|>:"
    image = render(sample_scene(random.Random(0)))
    assert len(model.answer(["<image>Is it red?"], [[image]], max_new_tokens=2)) == 1
    assert len(model.generate_images(["a red circle"], n=2, guidance_scale=2.0, seed=0)[0]) == 2


def test_janus_refuses_a_guidance_scale_its_generate_cannot_run(tiny_janus):
    model = load_model(str(tiny_janus), device="cpu", dtype="float32")
    with pytest.raises(HermesBenchError, match="CFG scale above 1"):
        model.generate_images(["a red circle"], n=1, guidance_scale=1.0, seed=0)
