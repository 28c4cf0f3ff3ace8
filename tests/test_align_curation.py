import json
import random
from collections import Counter

import pytest
from PIL import Image

from hermes_bench.align.curate import CurationConfig, Pair, Samples, pairs_table, select
from hermes_bench.align.data import json_records, load_questions, load_records, shapes_records
from hermes_bench.align.sample_scores import (
    EmbeddingChoice,
    OracleVQA,
    SceneCaptionScorer,
    SimilarityCaptionScorer,
    TextEncoder,
)
from hermes_bench.errors import HermesBenchError
from hermes_bench.judges import YES_NO, ExactChoice
from hermes_bench.world import language
from hermes_bench.world.questions import answer
from hermes_bench.world.scene import render, sample_scene


def test_first_round_pairs_best_with_worst_and_skips_ties():
    assert select(Samples(["a", "b", "c"], [0.5, 0.9, 0.1]), None) == Pair("b", "c", 0.9, 0.1)
    assert select(Samples(["a", "b"], [0.7, 0.7]), None) is None


def test_generation_pairs_need_a_good_enough_winner():
    assert select(Samples([[1], [2]], [0.6, 0.2]), None, min_best=0.6) is None
    assert select(Samples([[1], [2]], [0.8, 0.2]), None, min_best=0.6) == Pair([1], [2], 0.8, 0.2)


def test_self_play_update_rule():
    previous = Pair("old-win", "old-lose", 0.7, 0.2)
    # the new best beats the previous winner: it is paired against that winner
    assert select(Samples(["x", "y"], [0.9, 0.1]), previous) == Pair("x", "old-win", 0.9, 0.7)
    # otherwise against the previous loser
    assert select(Samples(["x", "y"], [0.5, 0.1]), previous) == Pair("x", "old-lose", 0.5, 0.2)
    # a new best no better than the previous loser makes no pair
    assert select(Samples(["x"], [0.2]), previous) is None


def test_pairs_are_joined_on_record_id_and_keep_the_previous_pair_when_no_update_is_valid():
    records = shapes_records(2, seed=3)
    und = [Samples(["a", "b"], [1.0, 0.5]), Samples(["c", "d"], [0.2, 0.2])]
    previous = {records[1].id: {"understanding": {"win": "p", "lose": "q", "win_score": 0.9, "lose_score": 0.3}}}
    table = pairs_table(records, und, None, previous, CurationConfig())
    assert table[records[0].id]["understanding"]["win"] == "a"
    assert table[records[1].id]["understanding"] == previous[records[1].id]["understanding"]
    assert "generation" not in table[records[0].id]


def test_on_policy_pairing_ignores_the_previous_pairs():
    records = shapes_records(2, seed=3)
    und = [Samples(["a", "b"], [1.0, 0.5]), Samples(["c", "d"], [0.2, 0.2])]
    previous = {r.id: {"understanding": {"win": "p", "lose": "q", "win_score": 0.9, "lose_score": 0.3}}
                for r in records}
    table = pairs_table(records, und, None, previous, CurationConfig(pairing="on-policy"))
    assert table[records[0].id]["understanding"] == {"win": "a", "lose": "b", "win_score": 1.0, "lose_score": 0.5}
    assert table[records[1].id]["understanding"] is None  # a tie among the new samples: no pair, old one dropped
    hermesflow = pairs_table(records, und, None, previous, CurationConfig())
    assert hermesflow[records[0].id]["understanding"]["lose"] == "p"  # 1.0 beats the previous winner


def test_scene_caption_scorer():
    rng = random.Random(0)
    for _ in range(50):  # the world's own captions parse back to the scene's objects
        scene = sample_scene(rng)
        counts, claim = language.parse_caption(language.caption(scene))
        assert counts == Counter(o.name for o in scene.objects) and claim is None
    records = shapes_records(6, seed=11)
    two = next(r for r in records if " of " in r.caption or " above " in r.caption or " below " in r.caption)
    scorer = SceneCaptionScorer()
    a = two.scene.objects[0].name
    wrong_relation = two.caption.replace("left of", "right of") if "left of" in two.caption else \
        two.caption.replace("right of", "left of").replace("above", "below") if "right of" in two.caption or \
        "above" in two.caption else two.caption.replace("below", "above")
    scores = scorer.score(two, [two.caption, wrong_relation, f"a {a}", "purple banana sky"])
    assert scores[0] == 1.0
    assert scores[1] == 0.5  # the right objects, a false relation
    assert scores[2] == pytest.approx(2 / 3)  # one of two objects: F1 2*1/(1+2)
    assert scores[3] == 0.0


def test_exact_choice_matcher():
    m = ExactChoice()
    assert m.match("No, it is not.", YES_NO) == "no" and m.match("Yes", YES_NO) == "yes"
    assert m.match("I think it is red", ("red", "blue")) == "red"
    assert m.match("red or blue", ("red", "blue")) is None


def test_oracle_scores_the_share_of_questions_right():
    record, other = shapes_records(2, seed=5)
    right, wrong = OracleVQA().score([record], [[render(record.scene), render(other.scene)]])[0]
    assert right == 1.0
    expected = sum(answer(other.scene, q.fact) == (q.answer == "yes") for q in record.questions)
    assert wrong == pytest.approx(expected / len(record.questions)) and wrong < 1


def test_json_records_and_questions(tmp_path):
    render(sample_scene(random.Random(1))).save(tmp_path / "a.png")
    rows = [{"id": "r1", "image": "a.png", "caption": "a red circle",
             "questions": [{"question": "What colour?", "choices": ["red", "blue"], "answer": "red"}]},
            {"image": "a.png", "prompt": "a blue square"}]
    (tmp_path / "data.json").write_text(json.dumps(rows))
    records = json_records(tmp_path / "data.json")
    assert [r.id for r in records] == ["r1", "1"] and records[1].caption == "a blue square"
    assert records[0].questions[0].prompt() == "What colour? Choose one: red, blue."
    (tmp_path / "q.jsonl").write_text(json.dumps({"id": "1", "questions": [
        {"question": "Is it blue?", "choices": ["yes", "no"], "answer": "yes"}]}) + "\n")
    load_questions(records, tmp_path / "q.jsonl")
    assert records[1].questions[0].prompt() == "Is it blue?" + language.YES_NO_SUFFIX


@pytest.mark.parametrize("rows, message", [
    ([{"image": "missing.png", "caption": "x"}], "missing or not an image"),
    ([{"image": "a.png"}], "needs an 'image' path and a 'caption'"),
    ([{"image": "a.png", "caption": "x", "questions": [{"question": "q", "choices": ["a"], "answer": "b"}]}],
     "an 'answer' among them"),
    ({"image": "a.png"}, "must hold a list"),
])
def test_json_records_bad_input(tmp_path, rows, message):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "data.json").write_text(json.dumps(rows))
    with pytest.raises(HermesBenchError, match=message):
        json_records(tmp_path / "data.json")


def test_missing_data_file(tmp_path):
    with pytest.raises(HermesBenchError, match="does not exist"):
        json_records(tmp_path / "nope.json")


def test_similarity_scorer_and_embedding_matcher_on_a_local_encoder(tiny_bert):
    record = shapes_records(1, seed=2)[0]
    scores = SimilarityCaptionScorer(TextEncoder(str(tiny_bert), "cls")).score(
        record, [record.caption, "a purple square and a yellow triangle"])
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and scores[1] < scores[0]
    matcher = EmbeddingChoice(TextEncoder(str(tiny_bert), "mean"))
    assert matcher.match("red", ("blue", "red")) == "red"
    assert matcher.match("blue", ("blue", "red")) == "blue"


def test_dataset_records_from_a_local_dataset(tmp_path):
    import datasets

    images = [render(sample_scene(random.Random(i))) for i in range(3)]
    rows = [{"image": im, "caption": f"caption {i}"} for i, im in enumerate(images)]
    (tmp_path / "data").mkdir()
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    datasets.Dataset.from_list(rows, features=features).to_parquet(tmp_path / "data" / "train-00000-of-00001.parquet")
    records = load_records(str(tmp_path), n=2, seed=0)
    assert [r.caption for r in records] == ["caption 0", "caption 1"]
    assert records[0].image.tobytes() == images[0].tobytes() and records[0].questions == []
    with pytest.raises(HermesBenchError, match="field text is missing"):
        load_records(str(tmp_path), n=2, seed=0, caption_column="text")
