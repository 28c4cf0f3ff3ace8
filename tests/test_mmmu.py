"""MMMU's official parsers and scoring, on hand-worked cases."""

import pytest

from hermes_bench.scoring import mmmu
from hermes_bench.tasks.mmmu import mmmu_utils

CHOICES = {"A": "a circle", "B": "a square", "C": "a red triangle", "D": "none"}


@pytest.mark.parametrize(("response", "letter"), [
    ("B", "B"), ("(C)", "C"), ("The answer is (B).", "B"), ("B.", "B"), ("Answer: D", "D"),
    ("(A) or maybe (C)", "C"),                 # several: the one mentioned last
    ("A is wrong, C is right", "C"),           # ' A ' and ' C ': last wins
    ("I am quite sure it shows a square here", "B"),   # > 5 words: option text
    ("a square", None),                        # <= 5 words and no letter: a seeded guess
])
def test_multi_choice_parser(response, letter):
    parsed = mmmu.parse_multi_choice_response(response, CHOICES, guess_key="q1")
    if letter is None:
        assert parsed in CHOICES
        assert parsed == mmmu.parse_multi_choice_response(response, CHOICES, guess_key="q1")  # deterministic
    else:
        assert parsed == letter


def test_the_guess_is_seeded_per_question():
    guesses = {mmmu.parse_multi_choice_response("hmm", CHOICES, guess_key=f"q{i}") for i in range(40)}
    assert guesses == set(CHOICES)  # spread over the choices, yet each one fixed by its question id


@pytest.mark.parametrize(("response", "gold", "correct"), [
    ("The answer is 3.14159", "3.14", True),      # numbers compared after rounding to 2 places
    ("1,000", "1000", True),
    ("so the result is 12 meters", "12", True),
    ("two", "['2', 'two']", True),                # several gold strings, stored as a list's text
    ("It is 2.", "['2', 'two']", True),
    ("banana", "a", False),                        # one-letter gold is padded: no trivial substring hit
    ("It is a", "a", True),
    ("Paris", "paris", True),
    ("London", "paris", False),
    ("Therefore x = 5", "5", True),
])
def test_open_answers(response, gold, correct):
    assert mmmu.eval_open(mmmu.gold_answers(gold), mmmu.parse_open_response(response)) is correct


def test_normalize_and_extract_numbers():
    assert mmmu.normalize_str(" 1,234.567 ") == [1234.57]
    assert mmmu.normalize_str("X") == [" x", "x "]
    assert mmmu.normalize_str("Blue") == ["blue"]
    # the official patterns run one after another, so the simple one also finds '200' and '5'
    assert mmmu.extract_numbers("costs 1,200 or 3e5 or -4.5") == ["1,200", "3e5", "200", "5", "-4.5"]


def test_options_are_parsed_as_literals_never_evaluated():
    assert mmmu.parse_options("['x', \"y's\"]") == ["x", "y's"]
    with pytest.raises(ValueError):
        mmmu.parse_options("__import__('os').getcwd()")


def test_accuracy_per_subject_is_instance_weighted():
    items = [{"correct": c} for c in (True, False, True, True)]
    assert mmmu.accuracy(items) == 0.75
    assert mmmu.accuracy([]) == 0.0


def _doc(**kw):
    base = {"id": "validation_Math_1", "question": "What is in <image 2> next to <image 1>? See <image 2>.",
            "options": "['one', 'two']", "question_type": "multiple-choice", "answer": "B",
            **{f"image_{k}": None for k in range(1, 8)}}
    return {**base, **kw}


def test_prompt_follows_the_official_llava_config():
    assert mmmu_utils.doc_to_text(_doc()) == ("What is in <image> next to <image>? See <image 2>.\n\n"
                                              "(A) one\n(B) two\n\n\n"
                                              "Answer with the option's letter from the given choices directly.")
    open_doc = _doc(question_type="open", question="How many?", options="[]")
    assert mmmu_utils.doc_to_text(open_doc) == "How many?\n\nAnswer the question using a single word or phrase."


def test_images_come_in_tag_order():
    from PIL import Image

    one, two = Image.new("RGB", (2, 2), "red"), Image.new("RGB", (2, 2), "blue")
    images = mmmu_utils.doc_to_image(_doc(image_1=one, image_2=two))
    assert [im.getpixel((0, 0)) for im in images] == [(0, 0, 255), (255, 0, 0)]


def test_process_results_scores_mc_and_open():
    assert mmmu_utils.process_results(_doc(), ["(B)"])["acc"]["correct"] is True
    assert mmmu_utils.process_results(_doc(), ["A"])["acc"]["correct"] is False
    open_doc = _doc(question_type="open", answer="['2', 'two']")
    assert mmmu_utils.process_results(open_doc, ["There are two."])["acc"]["correct"] is True
