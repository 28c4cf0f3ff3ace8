"""The embedded model's training recipe: inputs built exactly as at inference, and a deterministic run."""

import json
import random
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from hermes_bench.cli import main
from hermes_bench.embedded.recipe import (
    Tokens,
    TrainConfig,
    build_examples,
    open_questions,
    pixel_tensor,
    train_embedded,
    unconditional,
)
from hermes_bench.embedded.release import WEIGHTS
from hermes_bench.embedded.tiny import BOI, BOS, PAD, tiny_janus
from hermes_bench.models import load_model
from hermes_bench.storage import files_sha256
from hermes_bench.world.scene import Scene, SceneObject, render, sample_scene

pytestmark = pytest.mark.slow  # subprocesses, training or several processes


def test_training_inputs_match_the_processor_at_inference():
    _, processor = tiny_janus(seed=0)
    scenes = [sample_scene(random.Random(3)) for _ in range(4)]
    expected = processor(text=["<image_placeholder>Is there a red circle in the image?"],
                         images=[render(scenes[0])], return_tensors="pt")
    ids, n_answer = Tokens(processor).understanding("<image>Is there a red circle in the image?", "Yes")
    assert ids[:-n_answer] == expected["input_ids"][0].tolist()
    assert torch.allclose(pixel_tensor(scenes[:1]), expected["pixel_values"], atol=1e-6)
    generation = processor(text=["a red circle"], generation_mode="image", return_tensors="pt")
    assert Tokens(processor).generation("a red circle") == generation["input_ids"][0].tolist()


def test_open_questions_ask_only_what_the_scene_determines():
    scene = Scene((SceneObject("red", "circle", 0, 2), SceneObject("blue", "square", 1, 3),
                   SceneObject("blue", "square", 3, 0), SceneObject("green", "circle", 0, 0)))
    asked = {(kind, question): answer for kind, question, answer in open_questions(scene)}
    assert asked == {  # the two blue squares are ambiguous: neither located nor related
        ("where", "Where is the red circle?"): "row one, column three",
        ("where", "Where is the green circle?"): "row one, column one",
        ("relation", "Where is the red circle relative to the green circle?"): "right of",
        ("relation", "Where is the green circle relative to the red circle?"): "left of",
        ("how many", "How many blue squares are there?"): "two",
        ("how many", "How many green circles are there?"): "one",
        ("how many", "How many red circles are there?"): "one",
        ("how many", "How many circles are there?"): "two",
        ("how many", "How many squares are there?"): "two"}
    _, processor = tiny_janus(seed=0)
    examples = build_examples([scene], Tokens(processor), random.Random(0))
    _, ids, n, kind = examples.open_questions[0]
    assert kind == "where" and processor.tokenizer.decode(ids[-n:-1]) == "row one, column three"
    assert "Where is the red circle?" in processor.tokenizer.decode(ids)


def test_unconditional_prompt_keeps_only_bos_and_begin_of_image():
    ids = torch.tensor([[PAD, BOS, 40, 41, 42, BOI]])
    assert unconditional(ids).tolist() == [[PAD, BOS, PAD, PAD, PAD, BOI]]


def test_world_train_runs_end_to_end_and_writes_a_model_card(tmp_path):
    args = ["world", "train", "--scenes", "48", "--vq-steps", "5", "--lm-steps", "3", "--focus-steps", "2",
            "--device", "cpu", "--guidance-scales", "1.5,2", "--eval-limit", "3", "--output", str(tmp_path / "a")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    card = (tmp_path / "a" / "README.md").read_text()
    assert files_sha256([tmp_path / "a" / WEIGHTS]) in card and "shapes_gap" in card
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert set(record["guidance_validation"]) == {"1.5", "2.0"}
    chosen = max(record["guidance_validation"], key=record["guidance_validation"].get)
    assert load_model(str(tmp_path / "a"), "cpu").default_guidance_scale == float(chosen)
    again = CliRunner().invoke(main, args)  # the finished recipe is not redone
    assert again.exit_code == 0 and "lm step" not in again.output


def _quiet(_message: str) -> None:
    pass


def test_training_is_deterministic(tmp_path):
    config = TrainConfig(hidden=32, layers=1, vision_layers=1, scenes=32, vq_assign_steps=3, vq_steps=3,
                         lm_steps=3, focus_steps=2, batch_size=8)
    train_embedded(tmp_path / "a", config, _quiet)
    train_embedded(tmp_path / "b", config, _quiet)
    assert files_sha256([tmp_path / "a" / WEIGHTS]) == files_sha256([tmp_path / "b" / WEIGHTS])
    (tmp_path / "b" / ".stages" / "trained.json").unlink()  # killed after the joint phase: resume from it
    logged: list[str] = []
    assert train_embedded(tmp_path / "b", config, logged.append)["resumed"] == ["VQ", "joint"]
    assert not any(m.startswith(("vq ", "lm step")) for m in logged) and any("focus step" in m for m in logged)
    assert files_sha256([tmp_path / "a" / WEIGHTS]) == files_sha256([tmp_path / "b" / WEIGHTS])
    other = train_embedded(tmp_path / "c", replace(config, seed=1), _quiet)
    assert files_sha256([tmp_path / "c" / WEIGHTS]) != files_sha256([tmp_path / "a" / WEIGHTS])
    assert other["config"]["seed"] == 1
