"""TIFA-style question generation: the parser, and a tiny causal LM (trained here to write one caption's
questions) loaded through from_pretrained, writing and self-filtering questions, also inside `hermes-bench align`."""

import json

import pytest
import torch
from click.testing import CliRunner
from launch import run_python
from transformers import LlamaConfig, LlamaForCausalLM

from hermes_bench.align.data import shapes_records
from hermes_bench.align.question_generation import FEW_SHOT, LMQuestionGenerator, described, parse_generated
from hermes_bench.cli import main
from hermes_bench.embedded.tiny import build_tokenizer
from hermes_bench.judges import MCQuestion

pytestmark = pytest.mark.slow  # subprocesses, training or several processes

RECORDS = shapes_records(2, seed=41)


def _block(record) -> str:
    """The record's first question, written the way the few-shot prompt asks for it."""
    q = record.questions[0]
    return f"Q: {q.text}\nChoices: {', '.join(q.choices)}\nA: {q.answer}\n"


def test_parse_keeps_well_formed_blocks_only():
    text = ("Q: Is there a dog?\nChoices: yes, no\nA: yes\n"
            "Q: What color is it?\nChoices: red, blue\nA: green\n"  # answer not a choice
            "Q: One choice?\nChoices: red\nA: red\n"
            "Q: Is there a dog?\nChoices: yes, no\nA: no\n"  # a repeat
            "Q: How many dogs?\nChoices: one, two, one\nA: two\n"
            "Description: next\nQ: Beyond?\nChoices: yes, no\nA: yes\n")
    assert parse_generated(text) == [MCQuestion("Is there a dog?", ("yes", "no"), "yes"),
                                     MCQuestion("How many dogs?", ("one", "two"), "two")]


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    """A tiny Llama that has memorised the few-shot prompt followed by each record's caption and one question."""
    texts = [FEW_SHOT + described(r.caption) + _block(r) for r in RECORDS]
    special = ["<s>", "</s>", "<pad>"]
    tokenizer = build_tokenizer(texts, special, {}, vocab_size=300)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         bos_token_id=0, eos_token_id=1, pad_token_id=2))
    ids = [[*tokenizer(t).input_ids, 1] for t in texts]
    batch = torch.tensor([row + [2] * (max(map(len, ids)) - len(row)) for row in ids])
    labels = batch.masked_fill(batch == 2, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(200):
        loss = model(input_ids=batch, attention_mask=(batch != 2).long(), labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("writer")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_generator_writes_and_keeps_the_captions_questions(writer):
    generator = LMQuestionGenerator(str(writer))
    written = generator.generate([r.caption for r in RECORDS])
    assert written == [parse_generated(_block(r)) for r in RECORDS]
    question = written[0][0]
    scores = generator.choice_logprobs(RECORDS[0].caption, question)
    assert scores[question.choices.index(question.answer)] == max(scores)
    flipped = MCQuestion(question.text, question.choices, next(c for c in question.choices if c != question.answer))
    assert not generator.ranks_its_answer_first(RECORDS[0].caption, flipped)  # the filter drops a wrong answer


SHARED_OUT = """
import json, os, sys
from accelerate import PartialState
from hermes_bench.align.question_generation import LMQuestionGenerator

PartialState(cpu=True)  # as `align` starts it: on CPU, torchrun's processes otherwise each run alone

class Counting(LMQuestionGenerator):
    prompts = 0

    def _complete(self, prompts):
        self.prompts += len(prompts)
        return super()._complete(prompts)

generator = Counting(sys.argv[1], batch_size=1)
written = generator.generate(json.loads(sys.argv[2]))
with open(f"written.rank{os.environ['RANK']}.json", "w") as f:
    json.dump({"prompts": generator.prompts, "written": [[q.stored() for q in qs] for qs in written]}, f)
"""


def test_two_processes_write_one_caption_each_and_both_get_all(tmp_path, writer):
    (tmp_path / "write.py").write_text(SHARED_OUT)
    captions = [r.caption for r in RECORDS]
    run_python(["write.py", str(writer), json.dumps(captions)], tmp_path, processes=2)
    expected = [[q.stored() for q in parse_generated(_block(r))] for r in RECORDS]
    for rank in (0, 1):
        assert json.loads((tmp_path / f"written.rank{rank}.json").read_text()) == {"prompts": 1, "written": expected}


def test_align_generates_questions_for_records_without_any(tmp_path, writer):
    rows = []
    for r in RECORDS:
        r.image.save(tmp_path / f"{r.id}.png")
        rows.append({"id": r.id, "image": f"{r.id}.png", "caption": r.caption})
    (tmp_path / "data.json").write_text(json.dumps(rows))
    args = ["align", "--output", str(tmp_path / "out"), "--data", str(tmp_path / "data.json"), "--rounds", "1",
            "--mode", "generation", "--images", "4", "--steps", "2", "--gate-limit", "4"]
    result = CliRunner().invoke(main, [*args, "--question-generator", str(writer)])
    assert "2 of 2 records got at least one" in result.output, result.output
    lines = [json.loads(line) for line in (tmp_path / "out" / "questions.jsonl").read_text().splitlines()]
    assert [row["id"] for row in lines] == [r.id for r in RECORDS]
    samples = json.loads((tmp_path / "out" / "round-1" / "samples.json").read_text())
    assert [len(x["scores"]) for x in samples["generation"]] == [4, 4]  # --images 4, scored by self-VQA
    assert all(0 <= s <= 1 for x in samples["generation"] for s in x["scores"])


def test_align_without_questions_or_generator_is_one_line(tmp_path):
    RECORDS[0].image.save(tmp_path / "a.png")
    (tmp_path / "d.json").write_text(json.dumps([{"id": "r1", "image": "a.png", "caption": "a cat"}]))
    result = CliRunner().invoke(main, ["align", "--output", str(tmp_path / "o"), "--data", str(tmp_path / "d.json")])
    assert result.exit_code == 2 and "record r1 has no questions" in result.output
    assert "Traceback" not in result.output
