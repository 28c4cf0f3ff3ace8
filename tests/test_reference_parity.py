"""Where the official scoring code differs from the obvious reading, we follow the official code.

Each case below is worked out by hand from the reference sources: MME's calculation.py, LLaVA's eval_pope.py,
ELLA's compute_dpg_bench.py, GenEval's evaluate_images.py and summary_scores.py.
"""

import math

import numpy as np
import pytest

from hermes_bench.errors import HermesBenchError
from hermes_bench.registry import Registry
from hermes_bench.runners import dpg as dpg_runner
from hermes_bench.runners.understanding import UnifiedLM
from hermes_bench.scoring import dpg, geneval, mme, pope


@pytest.mark.parametrize(("text", "parsed"), [
    ("\nYes", "yes"),      # "\nyes"[:4] still holds "yes"
    ("  Yes", "other"),    # "  ye": calculation.py does not strip
    (" \nno", "no"),
    ("   no", "other"),    # "   n"
    ("YES", "yes"), ("yes\n", "yes"), ("No\n", "no"),
])
def test_mme_parser_lower_cases_and_does_not_strip(text, parsed):
    assert mme.parse_answer(text) == parsed


@pytest.mark.parametrize("questions", [1, 3])
def test_mme_image_without_exactly_two_questions_is_a_data_error(questions):
    items = [mme.item("yes", "Yes", "count/0007.png", "count") for _ in range(questions)]
    with pytest.raises(HermesBenchError, match=r"count/0007.png .*not 2"):
        mme.perception_score(items)


def test_mme_datasets_need_two_questions_per_image_and_resamples_count_each_draw():
    mme.check_pairs(["a.png", "a.png", "b.png", "b.png"])
    for ids in (["a.png", "a.png", "b.png"], ["a.png"] * 4):
        with pytest.raises(HermesBenchError, match="not 2"):
            mme.check_pairs(ids)
    # a bootstrap resample that drew image a (one answer wrong) twice counts two images; with b: acc 3/4, acc+ 1/2
    pair = [mme.item("Yes", "Yes", "a.png", "OCR"), mme.item("Yes", "No", "a.png", "OCR")]
    right = [mme.item("Yes", "Yes", "b.png", "OCR"), mme.item("No", "No", "b.png", "OCR")]
    assert mme.subtask_scores(pair + pair) == {"OCR": 50.0}  # acc 2/4, acc+ 0
    assert mme.subtask_scores(pair + right) == {"OCR": 125.0}


def test_mme_gold_answer_must_be_yes_or_no():
    with pytest.raises(HermesBenchError, match="Yes or No"):
        mme.item("yes", "maybe", "a.png", "OCR")


def test_pope_metrics_the_official_script_divides_by_zero_for_are_undefined():
    never_yes = [pope.item("No", a) for a in ("yes", "no", "no")]
    assert math.isnan(pope.precision(never_yes)) and math.isnan(pope.f1(never_yes))
    assert pope.recall(never_yes) == 0.0 and pope.accuracy(never_yes) == pytest.approx(2 / 3)
    no_gold_yes = [pope.item(r, "no") for r in ("Yes", "No")]
    assert math.isnan(pope.recall(no_gold_yes)) and math.isnan(pope.f1(no_gold_yes))
    assert pope.precision(no_gold_yes) == 0.0
    # P = 0 and R = 0 (TP 0, FP 1, FN 1): the official 2PR / (P + R) divides by zero too
    assert math.isnan(pope.f1([pope.item("Yes", "no"), pope.item("No", "yes")]))
    with pytest.raises(HermesBenchError, match="neither yes nor no"):
        pope.item("Yes", 1)


# DPG-Bench: q1 (no parent), q2 depends on q1, q3 depends on q2, q4 (no parent)
CHAIN = [dpg.Question(1, (0,), "entity - whole", "Is there a cat?"),
         dpg.Question(2, (1,), "attribute - color", "Is the cat black?"),
         dpg.Question(3, (2,), "attribute - texture", "Is the black cat fluffy?"),
         dpg.Question(4, (0,), "entity - whole", "Is there a sofa?")]


def test_dpg_a_no_runs_down_a_dependency_chain():
    raw, zeroed = dpg.tile_scores(CHAIN, ["no", "yes", "yes", "yes"])
    assert raw == {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}
    assert zeroed == {1: 0.0, 2: 0.0, 3: 0.0, 4: 1.0}


def test_dpg_zeroing_reads_the_scores_as_they_stand_in_question_order():
    # q1 depends on q2, listed after it: when q1 is checked, q2 still holds its raw 1, so q1 is kept;
    # then q2 is zeroed by q3's "no"
    questions = [dpg.Question(1, (2,), "a - b", "?"), dpg.Question(2, (3,), "a - b", "?"),
                 dpg.Question(3, (0,), "a - b", "?")]
    assert dpg.tile_scores(questions, ["yes", "yes", "no"])[1] == {1: 1.0, 2: 0.0, 3: 0.0}


def test_dpg_an_image_whose_zeroing_meets_a_missing_parent_is_dropped_and_counted(capsys):
    dangling = [dpg.Question(1, (0,), "entity - whole", "?"), dpg.Question(2, (9, 1), "attribute - color", "?")]
    dropped = dpg.image_record("p1", dangling, [["yes", "yes"]] * 4)
    assert dropped["score"] is None and "question 9" in dropped["dropped"]
    # parents are read in order and the reference stops at the first zero: a "no" to q1 first means 9 is never
    # looked up, so this image is scored
    first_zero = [dpg.Question(1, (0,), "entity - whole", "?"), dpg.Question(2, (1, 9), "attribute - color", "?")]
    kept = dpg.image_record("p2", first_zero, [["no", "yes"]] * 4)
    assert kept["score"] == 0.0 and "dropped" not in kept
    full = dpg.image_record("p3", CHAIN, [["yes"] * 4] * 4)
    metrics = dpg_runner.metrics([dropped, kept, full])
    assert metrics["images_dropped"] == 1
    assert metrics["dpg"] == pytest.approx(50.0)  # mean of 0 and 1 over the two scored images
    assert "dropped 1 of 3 images" in capsys.readouterr().err


def test_dpg_a_repeated_proposition_id_counts_once_as_the_references_dict(tmp_path):
    path = tmp_path / "dpg_bench.csv"
    path.write_text("item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,"
                    "question_natural_language\n"
                    "p1,t,k,1,0,entity,whole,entity - whole (cat),Is there a cat?\n"
                    "p1,t,k,2,1,attribute,color,attribute - color (cat; black),Is the cat black?\n"
                    "p1,t,k,1,0,entity,whole,entity - whole (dog),Is there a dog?\n")
    questions = dpg.read_csv(path)["p1"]
    assert [(q.proposition_id, q.text) for q in questions] == [(1, "Is there a dog?"), (2, "Is the cat black?")]
    path.write_text(path.read_text() + "p2,t,k,1,0,entity,whole,entity - whole (x),?\n"
                                       "p1,t,k,3,0,entity,whole,entity - whole (y),?\n")
    with pytest.raises(HermesBenchError, match="rows of item p1 are not together"):
        dpg.read_csv(path)


def test_dpg_scores_average_as_numpy_does():
    # 1/3, 1/3, 1/3 summed in Python is not np.mean's pairwise sum at the last bit for long lists: compare
    # with the reference's np.mean on 1,000 images of varied scores
    rng = np.random.default_rng(0)
    records = [{"item_id": str(i), "score": float(s)} for i, s in enumerate(rng.random(1000) / 3)]
    assert dpg.dpg_score(records) == np.mean([r["score"] for r in records]) * 100


def _det(label, score, box=(0, 0, 10, 10), color=None):
    return geneval.Detection(label, score, box, color)


def test_geneval_thresholds_compare_in_float32():
    # float32(0.3) widened to Python's float is 0.30000001192...: above 0.3 in float64, equal in float32
    at_threshold = float(np.float32(0.3))
    assert geneval.select([_det("cat", at_threshold)], "single_object") == {}
    assert len(geneval.select([_det("cat", float(np.nextafter(np.float32(0.3), np.float32(1))))], "single_object")) == 1


def test_geneval_equal_scores_are_ordered_as_the_references_reversed_argsort():
    # numpy's argsort of a short array keeps equal scores in index order; the reference reverses it, so among
    # equal scores the LAST detection comes first
    dets = [_det("square", 0.8, color="blue"), _det("square", 0.8, color="green"), _det("square", 0.8, color="red")]
    assert [d.color for d in geneval.select(dets, "colors")["square"]] == ["red", "green", "blue"]
    meta = {"tag": "colors", "include": [{"class": "square", "count": 1, "color": "red"}]}
    assert geneval.grade(geneval.select(dets, "colors"), meta)[0]


def test_geneval_summary_percentages_and_tag_order():
    metadata = ['{"p": 1}'] * 4 + ['{"p": 2}'] * 4
    correct = [False, False, False, True] + [False] * 4
    assert geneval.summary(metadata, correct) == {"correct_images": 12.5, "correct_prompts": 50.0}
    scores = geneval.tag_scores(["colors", "colors", "position", "counting"], [True, False, True, False])
    assert scores == {"colors": 0.5, "counting": 0.0, "position": 1.0, "overall": pytest.approx(0.5)}


@pytest.mark.parametrize(("task", "max_tokens"), [("pope_random", 128), ("mme", 16), ("mmmu_art", 128)])
def test_understanding_tasks_use_their_reference_generation_settings(task, max_tokens):
    kwargs = Registry([]).get([task])[0].config["generation_kwargs"]
    assert kwargs["until"] == [] and kwargs["max_gen_toks"] == max_tokens and not kwargs["do_sample"]


class _Answers:
    """Stands in for a model whose answers begin with a newline, as chat models' often do."""

    name = fingerprint = "leading-newline"

    def answer(self, prompts, images, **_):
        return ["\nYes, there is." for _ in prompts]


def test_an_answer_that_starts_with_a_newline_reaches_the_scorer_whole(tmp_path):
    from lm_eval.api.instance import Instance

    from hermes_bench.storage import SampleCache

    lm = UnifiedLM(_Answers(), SampleCache(tmp_path, "understanding"), batch_size=4, progress=False)
    request = Instance("generate_until", {}, ("Is there a cat?", {"until": [], "max_gen_toks": 16}, {}), 0)
    [response] = lm.generate_until([request])
    assert response == "\nYes, there is."
    assert mme.parse_answer(response) == "yes"


def test_mmmu_multiple_choice_gold_given_as_a_list_accepts_any_of_its_letters():
    from hermes_bench.scoring import mmmu

    doc = {"id": "validation_Art_1", "question_type": "multiple-choice", "options": "['x', 'y', 'z']",
           "answer": "['A', 'C']"}
    assert mmmu.item("(C)", doc)["correct"] and not mmmu.item("(B)", doc)["correct"]
    assert mmmu.item("(A)", {**doc, "answer": "A"})["correct"]
