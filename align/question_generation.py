"""TIFA-style questions for homologous records that bring none: a causal language model writes multiple-choice
questions about each caption from a few-shot prompt, and a question is kept only when the same model, reading
the caption, ranks the answer it wrote first among the choices (TIFA filters its LLaMA-2 questions with a QA
model in the same way)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hermes_bench.errors import loading, refuse_remote_code
from hermes_bench.judges import MCQuestion
from hermes_bench.processes import merged, my_batches

FEW_SHOT = """Write multiple-choice questions that check whether an image matches its description.

Description: two red circles and a blue square
Q: Is there a circle?
Choices: yes, no
A: yes
Q: What color is the square?
Choices: red, blue, green, yellow
A: blue
Q: How many circles are there?
Choices: one, two, three, four
A: two

Description: a cat sleeping on a wooden bench
Q: What animal is in the image?
Choices: cat, dog, bird, horse
A: cat
Q: What is the bench made of?
Choices: wood, metal, stone, plastic
A: wood

"""
BLOCK = re.compile(r"^Q: *(.+?) *\nChoices: *(.+?) *\nA: *(.+?) *$", re.MULTILINE)


def described(caption: str) -> str:
    return f"Description: {caption}\n"


def parse_generated(text: str) -> list[MCQuestion]:
    """The well-formed Q / Choices / A blocks of a completion, up to the next description; a block whose answer
    is not one of at least two distinct choices is dropped, and so is a repeated question."""
    text = text.split("Description:")[0]
    found: dict[str, MCQuestion] = {}
    for question, choices, answer in BLOCK.findall(text):
        options = tuple(dict.fromkeys(c.strip() for c in choices.split(",") if c.strip()))
        if len(options) >= 2 and answer in options and question not in found:
            found[question] = MCQuestion(question, options, answer)
    return list(found.values())


class QuestionGenerator(ABC):
    @abstractmethod
    def generate(self, captions: list[str]) -> list[list[MCQuestion]]:
        """For each caption, multiple-choice questions whose answers the caption determines."""


class LMQuestionGenerator(QuestionGenerator):
    """Questions written by a causal LM (a hub id or folder), greedily, and filtered by its own choice ranking."""

    def __init__(self, model_id: str, device: str = "cpu", max_new_tokens: int = 160, batch_size: int = 8) -> None:
        with loading(f"the question generator {model_id}",
                     "pass a causal LM's hub id or local folder to --question-generator"):
            refuse_remote_code(model_id, "the question generator")
            self.tokenizer = AutoTokenizer.from_pretrained(model_id, padding_side="left", trust_remote_code=False)
            self.model = AutoModelForCausalLM.from_pretrained(model_id, trust_remote_code=False).to(device).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device, self.max_new_tokens, self.batch_size = device, max_new_tokens, batch_size

    @torch.inference_mode()
    def _complete(self, prompts: list[str]) -> list[str]:
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                  pad_token_id=self.tokenizer.pad_token_id)
        return self.tokenizer.batch_decode(out[:, batch.input_ids.shape[1]:], skip_special_tokens=True)

    @torch.inference_mode()
    def choice_logprobs(self, caption: str, question: MCQuestion) -> list[float]:
        """Summed log-probs of each choice as the answer, given the caption and the question."""
        context = f"{described(caption)}Q: {question.text}\nChoices: {', '.join(question.choices)}\nA:"
        start = len(self.tokenizer(context).input_ids)
        texts = [f"{context} {choice}" for choice in question.choices]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="right").to(self.device)
        logprobs = self.model(**batch).logits[:, :-1].float().log_softmax(-1)
        targets = batch.input_ids[:, 1:]
        picked = logprobs.gather(-1, targets[..., None])[..., 0]
        keep = batch.attention_mask[:, 1:].bool() & (torch.arange(targets.shape[1], device=self.device) >= start - 1)
        return (picked * keep).sum(-1).tolist()

    def ranks_its_answer_first(self, caption: str, question: MCQuestion) -> bool:
        scores = self.choice_logprobs(caption, question)
        return question.choices[scores.index(max(scores))] == question.answer

    def generate(self, captions):
        mine = {}
        for start in my_batches(len(captions), self.batch_size):
            chunk = captions[start:start + self.batch_size]
            written = self._complete([FEW_SHOT + described(c) for c in chunk])
            for i, (caption, text) in enumerate(zip(chunk, written, strict=True)):
                mine[start + i] = [q for q in parse_generated(text) if self.ranks_its_answer_first(caption, q)]
        return merged(mine, range(len(captions)))
