import random

from hermes_bench.judges import ExactJudge, read_scene
from hermes_bench.world import language
from hermes_bench.world.datasets import homologous
from hermes_bench.world.questions import QUESTION_TYPES, Question, answer, question_pairs
from hermes_bench.world.scene import Scene, SceneObject, render, sample_scene


def test_every_pair_is_one_true_one_false_question_differing_in_one_fact():
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        scene = sample_scene(rng)
        for true, false in question_pairs(scene, rng):
            assert answer(scene, true) is True and answer(scene, false) is False
            assert true.kind == false.kind
            seen.add(true.kind)
            changed = [f for f in ("color", "shape", "number", "relation") if getattr(true, f) != getattr(false, f)]
            assert len(changed) == 1, (true, false)
    assert seen == set(QUESTION_TYPES)


def test_hard_negatives_keep_the_colour_or_the_shape_of_a_present_object():
    rng = random.Random(1)
    for _ in range(200):
        scene = sample_scene(rng)
        _, false = question_pairs(scene, rng, ("existence",))[0]
        assert false.color in {o.color for o in scene.objects} or false.shape in {o.shape for o in scene.objects}


def test_questions_read_as_the_world_words_them():
    scene = Scene((SceneObject("red", "circle", 0, 0), SceneObject("blue", "square", 0, 2)))
    assert Question("shape", "red", "circle").text == "Is the red object a circle?"
    assert Question("position", "red", "circle", relation="left of", other="blue square").text == \
        "Is the red circle to the left of the blue square?"
    assert answer(scene, Question("position", "red", "circle", relation="left of", other="blue square"))
    assert not answer(scene, Question("position", "blue", "square", relation="left of", other="red circle"))
    assert answer(scene, Question("count", None, "circle", number=1))
    two = Scene((SceneObject("red", "circle", 0, 0), SceneObject("blue", "circle", 1, 1)))
    assert answer(two, Question("color", "red", "circle")) is None  # which circle? never right


def test_exact_judge_reads_back_every_render_and_answers_like_the_scene_graph():
    items = homologous(60, seed=9)
    said = ExactJudge().answer([render(it.scene) for it in items], [list(it.questions) for it in items])
    assert all(read_scene(render(it.scene)) == it.scene for it in items)
    assert [list(it.truths) for it in items] == said


def test_homologous_questions_follow_from_the_caption():
    items = homologous(30, seed=2)
    relation_items = [it for it in items if " of " in it.caption or "above" in it.caption or "below" in it.caption]
    assert len(relation_items) == 10
    assert all(it.caption == language.caption(it.scene) for it in items if it not in relation_items)
    assert any(q.kind == "position" for it in relation_items for q in it.questions)
    assert all(q.kind != "position" for it in items if it not in relation_items for q in it.questions)
    assert homologous(30, seed=2) == items
