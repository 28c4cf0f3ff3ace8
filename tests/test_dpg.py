"""DPG-Bench scoring on hand-worked cases."""

import pytest
from PIL import Image

from hermes_bench.errors import HermesBenchError
from hermes_bench.scoring import dpg

# 1: entity (no parent); 2: its colour (parent 1); 3: another entity; 4: relation (parents 1 and 3)
QUESTIONS = [dpg.Question(1, (0,), "entity - whole", "Is there a cat?"),
             dpg.Question(2, (1,), "attribute - color", "Is the cat black?"),
             dpg.Question(3, (0,), "entity - whole", "Is there a sofa?"),
             dpg.Question(4, (1, 3), "relation - spatial", "Is the cat on the sofa?")]


def test_dependency_zeroing_on_independent_parents():
    raw, zeroed = dpg.tile_scores(QUESTIONS, ["no", "yes", "yes", "yes"])
    assert raw == {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}
    assert zeroed == {1: 0.0, 2: 0.0, 3: 1.0, 4: 0.0}  # 2 and 4 depend on 1


def test_only_exactly_yes_scores():
    raw, _ = dpg.tile_scores(QUESTIONS, ["Yes", "yes.", " yes", "yes"])
    assert raw == {1: 0.0, 2: 0.0, 3: 0.0, 4: 1.0}


def test_image_score_and_categories_hand_worked():
    answers = [["yes", "yes", "yes", "yes"],   # tile 1: 4/4
               ["no", "yes", "yes", "yes"],    # tile 2: zeroed 1,2,4 -> 1/4
               ["yes", "no", "yes", "no"],     # tile 3: 2/4
               ["yes", "yes", "no", "yes"]]    # tile 4: 4 zeroed by 3 -> 2/4
    record = dpg.image_record("p1", QUESTIONS, answers)
    assert record["tile_scores"] == [1.0, 0.25, 0.5, 0.5]
    assert record["score"] == pytest.approx(0.5625)
    assert dpg.dpg_score([record]) == pytest.approx(56.25)
    cats = dpg.category_scores([record])
    # entity - whole: q1 zeroed 1,0,1,1 and q3 1,1,1,0 -> 6/8
    assert cats["L2/entity - whole"] == pytest.approx(75.0)
    assert cats["L1/entity"] == pytest.approx(75.0)
    assert cats["L2/relation - spatial"] == pytest.approx(25.0)  # q4: 1,0,0,0
    compat = dpg.category_scores([record], compat=True)  # last tile, un-zeroed: q4 raw = 1
    assert compat["L2/relation - spatial"] == 100.0 and compat["L2/entity - whole"] == 50.0


def test_tiles_come_in_the_reference_order():
    grid = Image.new("RGB", (4, 4))
    for (x, y), color in zip([(0, 0), (2, 0), (0, 2), (2, 2)], ["red", "green", "blue", "white"], strict=True):
        grid.paste(Image.new("RGB", (2, 2), color), (x, y))
    assert [t.getpixel((0, 0)) for t in dpg.tiles(grid, "g")] == [(255, 0, 0), (0, 128, 0), (0, 0, 255),
                                                                   (255, 255, 255)]
    with pytest.raises(HermesBenchError, match="2x2 grid"):
        dpg.tiles(Image.new("RGB", (4, 6)), "g.png")


def test_csv_reading(tmp_path):
    path = tmp_path / "dpg_bench.csv"
    path.write_text("item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,"
                    "question_natural_language\n"
                    'p1,a cat,cat,1,0,entity,whole,entity - whole (cat),Is there a cat?\n'
                    'p1,a cat,cat,2,1,attribute,color,attribute - color (cat; black),Is the cat black?\n')
    questions = dpg.read_csv(path)
    assert questions["p1"][1] == dpg.Question(2, (1,), "attribute - color", "Is the cat black?")
    path.write_text("item_id,text\np1,a cat\n")
    with pytest.raises(HermesBenchError, match="column keywords"):
        dpg.read_csv(path)
