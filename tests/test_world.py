import io
import random

from PIL import Image

from hermes_bench.detectors.shapes import detect
from hermes_bench.scoring.geneval import TAGS
from hermes_bench.world import datasets, language
from hermes_bench.world.scene import Scene, SceneObject, render, sample_scene


def _truth(scene):
    return sorted((o.shape, o.color, o.box) for o in scene.objects)


def test_exact_detector_is_right_on_500_renders():
    rng = random.Random(123)
    scenes = [sample_scene(rng) for _ in range(500)]
    wrong = [s for s in scenes if sorted((d.label, d.color, d.box) for d in detect(render(s))) != _truth(s)]
    assert not wrong
    assert all(d.score == 1.0 for d in detect(render(scenes[0])))


def test_scenes_are_deterministic_per_seed():
    a = [sample_scene(random.Random(7)) for _ in range(3)]
    b = [sample_scene(random.Random(7)) for _ in range(3)]
    assert a == b
    assert render(a[0]).tobytes() == render(b[0]).tobytes()


def test_caption_groups_objects_by_name():
    scene = Scene((SceneObject("red", "circle", 0, 0), SceneObject("blue", "square", 0, 1),
                   SceneObject("red", "circle", 1, 1)))
    assert language.caption(scene) == "two red circles and a blue square"


def test_pope_rows_follow_the_hub_schema_and_balance_yes_no():
    rows = datasets.pope("adversarial", n_images=30, seed=5)["test"]
    assert set(rows.features) == {"id", "question_id", "question", "answer", "image_source", "image", "category"}
    answers = rows["answer"]
    assert answers.count("yes") == answers.count("no") > 0
    assert set(rows["category"]) == {"adversarial"}


def _names_in(image_cell):
    return {f"{d.color} {d.label}" for d in detect(Image.open(io.BytesIO(image_cell["bytes"])))}


def _probe(question):
    return question.removeprefix("Is there a ").split(" in the image?")[0]


def test_pope_answers_are_true_of_the_image_and_strategies_differ():
    negatives = {}
    for split in datasets.POPE_SPLITS:
        rows = datasets.pope(split, 40, seed=5)["test"]
        for row in rows:
            assert (_probe(row["question"]) in _names_in(row["image"])) == (row["answer"] == "yes")
        negatives[split] = [r["question"] for r in rows if r["answer"] == "no"]
    assert negatives["random"] != negatives["popular"] != negatives["adversarial"]


def test_mme_has_one_true_and_one_false_question_per_image():
    rows = datasets.mme(n_images=10, seed=3)["test"]
    by_image = {}
    for r in rows:
        by_image.setdefault(r["question_id"], []).append(r["answer"])
        assert r["question"].endswith("Please answer yes or no.")
    assert len(by_image) == 40
    assert all(sorted(v) == ["No", "Yes"] for v in by_image.values())


def test_mme_questions_are_true_of_their_scene():
    """Rendering the scene and asking the exact detector agrees with each 'Yes' existence question."""
    rows = datasets.mme(n_images=10, seed=3)["test"]
    for r in rows:
        if r["category"] == "existence":
            assert (_probe(r["question"]) in _names_in(r["image"])) == (r["answer"] == "Yes")


def test_geneval_metadata_schema():
    prompts = datasets.geneval_metadata(n_per_tag=5, seed=1)
    assert [p["tag"] for p in prompts] == [t for t in TAGS for _ in range(5)]
    for p in prompts:
        assert {"tag", "prompt", "include"} <= set(p)
        if p["tag"] == "counting":
            assert p["exclude"][0]["count"] == p["include"][0]["count"] + 1
        if p["tag"] == "position":
            assert p["include"][1]["position"][1] == 0
