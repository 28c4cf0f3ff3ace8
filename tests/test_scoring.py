"""Scorers against hand-worked expectations (numbers worked out by hand, not by the code under test)."""

import numpy as np
import pytest

from hermes_bench.scoring import mme, pope
from hermes_bench.scoring.geneval import Detection, grade, relative_position, select, tag_scores
from hermes_bench.scoring.stats import bootstrap_distribution, interval


@pytest.mark.parametrize(("text", "parsed"), [
    ("Yes", "yes"), ("Yes.", "yes"), ("yes, there is a cat.", "yes"), ("No", "no"), ("no.", "no"),
    ("No, there is not.", "no"), ("There is no dog in the image", "no"), ("It is not there", "no"),
    ("Yes. No dog though.", "yes"),  # only the first sentence counts
    ("Not sure", "yes"),  # 'Not' capitalised is not in the official word list
    ("", "yes"), ("....", "yes"),
])
def test_pope_parser_is_the_official_one(text, parsed):
    assert pope.parse_answer(text) == parsed


def test_pope_metrics_hand_worked():
    # gold: y y y n n ; predicted: y y n y n  -> TP 2, FN 1, FP 1, TN 1
    responses, gold = ["Yes", "yes", "No", "Yes.", "no"], ["yes", "yes", "yes", "no", "no"]
    items = [pope.item(r, a) for r, a in zip(responses, gold, strict=True)]
    assert pope.accuracy(items) == pytest.approx(3 / 5)
    assert pope.precision(items) == pytest.approx(2 / 3)
    assert pope.recall(items) == pytest.approx(2 / 3)
    assert pope.f1(items) == pytest.approx(2 / 3)
    assert pope.yes_ratio(items) == pytest.approx(3 / 5)  # predicted yes, not gold yes (3/5 as well by chance)
    all_no = [pope.item("no", a) for a in ["yes", "no", "no", "no"]]
    assert pope.yes_ratio(all_no) == 0.0 and pope.recall(all_no) == 0.0


@pytest.mark.parametrize(("text", "parsed"), [
    ("Yes", "yes"), ("no", "no"), (" No.", "no"), ("Yes, it is.", "yes"), ("yesterday", "yes"),
    ("Not at all", "no"), ("I think so", "other"), ("", "other"), ("The answer is yes", "other"),
])
def test_mme_parser_is_the_official_one(text, parsed):
    assert mme.parse_answer(text) == parsed


def test_mme_score_hand_worked():
    # existence: image a both right, image b one right -> acc 3/4, acc+ 1/2 -> 75 + 50 = 125
    # count: image c both wrong ('other' counts wrong) -> 0 ; total perception 125
    rows = [("Yes", "Yes", "a"), ("No", "No", "a"), ("Yes", "Yes", "b"), ("Yes", "No", "b")]
    items = [mme.item(r, g, q, "existence") for r, g, q in rows]
    items += [mme.item("maybe", "Yes", "c", "count"), mme.item("Yes", "No", "c", "count")]
    assert mme.subtask_scores(items) == {"existence": pytest.approx(125.0), "count": 0.0}
    assert mme.perception_score(items) == pytest.approx(125.0)
    assert mme.cognition_score(items) == 0.0


def _det(label, score=1.0, box=(0, 0, 10, 10), color=None):
    return Detection(label, score, box, color)


def test_geneval_counting_needs_exactly_n_through_the_exclude_clause():
    meta = {"tag": "counting", "include": [{"class": "circle", "count": 2}],
            "exclude": [{"class": "circle", "count": 3}]}
    two = [_det("circle"), _det("circle")]
    assert grade(select(two, "counting"), meta)[0]
    assert not grade(select([*two, _det("circle")], "counting"), meta)[0]
    assert not grade(select([_det("circle")], "counting"), meta)[0]


def test_geneval_counting_threshold_is_0_9_and_strict():
    meta = {"tag": "counting", "include": [{"class": "circle", "count": 2}],
            "exclude": [{"class": "circle", "count": 3}]}
    dets = [_det("circle", 0.95), _det("circle", 0.92), _det("circle", 0.9)]  # 0.9 is not > 0.9
    assert grade(select(dets, "counting"), meta)[0]
    assert len(select(dets, "two_object")["circle"]) == 3  # 0.3 elsewhere
    assert select([_det("circle", 0.3)], "single_object") == {}


def test_geneval_color_checks_the_top_count_by_confidence():
    meta = {"tag": "colors", "include": [{"class": "square", "count": 1, "color": "red"}]}
    assert grade(select([_det("square", 0.8, color="blue"), _det("square", 0.9, color="red")], "colors"), meta)[0]
    assert not grade(select([_det("square", 0.9, color="blue"), _det("square", 0.8, color="red")], "colors"),
                     meta)[0]


def test_geneval_color_majority_with_a_classifier():
    meta = {"tag": "color_attr", "include": [{"class": "dog", "count": 2, "color": "brown"}]}
    dets = select([_det("dog", 0.9), _det("dog", 0.8)], "color_attr")
    assert grade(dets, meta, classify_colors=lambda ds: ["brown", "brown"])[0]
    assert not grade(dets, meta, classify_colors=lambda ds: ["brown", "black"])[0]


@pytest.mark.parametrize(("box_a", "relations"), [
    ((0, 40, 10, 50), {"left of"}),            # centre 5 vs 45: far left, same row
    ((80, 40, 90, 50), {"right of"}),
    ((40, 0, 50, 10), {"above"}),             # y grows downward
    ((40, 80, 50, 90), {"below"}),
    ((0, 0, 10, 10), {"left of", "above"}),   # diagonal: both components exceed 0.5
    ((42, 40, 52, 50), set()),                # offset 2 < margin 0.1 * (10 + 10): no relation
])
def test_geneval_relative_position(box_a, relations):
    assert relative_position(_det("a", box=box_a), _det("b", box=(40, 40, 50, 50))) == relations


def test_geneval_position_margin_shrinks_the_offset():
    # offset (5, 0); margin 0.1 * (10 + 10) = 2 -> revised (3, 0) / 5 = 0.6 > 0.5 -> right of
    assert relative_position(_det("a", box=(45, 40, 55, 50)), _det("b", box=(40, 40, 50, 50))) == {"right of"}
    # offset (5, 4): revised (3, 2) / |(5, 4)| = (0.47, 0.31) -> nothing passes 0.5
    assert relative_position(_det("a", box=(45, 44, 55, 54)), _det("b", box=(40, 40, 50, 50))) == set()


def test_geneval_position_clause_uses_its_target_group():
    meta = {"tag": "position", "include": [{"class": "square", "count": 1},
                                           {"class": "circle", "count": 1, "position": ["left of", 0]}]}
    ok = [_det("square", box=(40, 0, 50, 10)), _det("circle", box=(0, 0, 10, 10))]
    bad = [_det("square", box=(0, 0, 10, 10)), _det("circle", box=(40, 0, 50, 10))]
    assert grade(select(ok, "position"), meta) == (True, "")
    correct, reason = grade(select(bad, "position"), meta)
    assert not correct and "left of" in reason
    no_target = [_det("circle", box=(0, 0, 10, 10))]
    assert "no target" in grade(select(no_target, "position"), meta)[1]


def test_geneval_overall_is_the_unweighted_mean_of_tags():
    scores = tag_scores(["colors"] * 4 + ["counting"], [True, True, True, False, False])
    assert scores == {"colors": 0.75, "counting": 0.0, "overall": 0.375}


def test_bootstrap_interval_brackets_the_mean_and_keeps_units_whole():
    rng = np.random.default_rng(0)
    items = [{"unit": i // 2, "x": float(i % 2)} for i in range(200)]  # each unit holds one 0 and one 1
    dist = bootstrap_distribution(items, lambda xs: float(np.mean([x["x"] for x in xs])), rng, n=200,
                                  unit=lambda x: x["unit"])
    assert np.all(dist == 0.5)  # whole units always give 0.5
    loose = bootstrap_distribution(items, lambda xs: float(np.mean([x["x"] for x in xs])), rng, n=500)
    lo, hi = interval(loose)
    assert lo < 0.5 < hi and hi - lo < 0.2


def test_bootstrap_with_a_single_unit():
    rng = np.random.default_rng(0)
    items = [{"q": "a", "x": 1.0}, {"q": "a", "x": 0.0}]
    dist = bootstrap_distribution(items, lambda xs: float(np.mean([x["x"] for x in xs])), rng, n=5,
                                  unit=lambda x: x["q"])
    assert list(dist) == [0.5] * 5
    assert len(bootstrap_distribution(items[:1], lambda xs: xs[0]["x"], rng, n=3)) == 3
