"""Understanding tasks through lm-eval's evaluator, with our unified model registered as a multimodal LM."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import lm_eval.api.task as lm_eval_task
import torch
from accelerate import PartialState
from accelerate.utils import gather, gather_object
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.evaluator import evaluate
from lm_eval.tasks import TaskManager
from tqdm import tqdm

from hermes_bench.errors import HermesBenchError
from hermes_bench.models.base import UnifiedModel
from hermes_bench.storage import SampleCache, digest


class UnifiedLM(LM):
    """lm-eval's view of a UnifiedModel: batched, length-sorted greedy answers, cached per batch.

    Batches are fixed before any cache lookup (sorted by prompt length, then key), so a resumed run computes
    exactly the batches an uninterrupted run would, and gets identical answers.
    """

    MULTIMODAL = True  # lm-eval refuses doc_to_image tasks otherwise

    def __init__(self, model: UnifiedModel, cache: SampleCache, batch_size: int, progress: bool = True) -> None:
        super().__init__()
        self.model = model
        self.cache = cache
        self.batch_size = batch_size
        self.progress = progress
        state = PartialState()
        self._rank, self._world_size = state.process_index, state.num_processes

    def generate_until(self, requests: list[Instance]) -> list[str]:
        calls = []
        for req in requests:
            context, gen_kwargs, aux = req.args
            images = aux.get("visual") or []
            images = images if isinstance(images, list) else [images]
            key = digest(self.model.fingerprint, context, gen_kwargs, images)
            calls.append((len(context), key, context, images, gen_kwargs))
        order = sorted(range(len(calls)), key=lambda i: (json.dumps(calls[i][4], sort_keys=True, default=str),
                                                         calls[i][0], calls[i][1]))
        batches = []
        for i in order:
            if batches and len(batches[-1]) < self.batch_size and calls[batches[-1][0]][4] == calls[i][4]:
                batches[-1].append(i)
            else:
                batches.append([i])
        for batch in tqdm(batches, desc="understanding", disable=not self.progress, leave=False):
            keys = [calls[i][1] for i in batch]
            if all(k in self.cache for k in keys):
                continue
            gen_kwargs = calls[batch[0]][4]
            texts = self.model.answer([calls[i][2] for i in batch], [calls[i][3] for i in batch],
                                      max_new_tokens=int(gen_kwargs.get("max_gen_toks", 16)),
                                      do_sample=bool(gen_kwargs.get("do_sample", False)),
                                      temperature=float(gen_kwargs.get("temperature", 1.0)),
                                      top_k=gen_kwargs.get("top_k"))
            self.cache.put_many({k: _truncate(t, gen_kwargs.get("until", [])) for k, t in zip(keys, texts,
                                                                                            strict=True)})
        return [self.cache.get(key) for _, key, *_ in calls]

    @property
    def device(self) -> torch.device:
        return PartialState().device

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return gather(tensor.reshape(1)) if self.world_size > 1 else tensor

    def gather_object(self, obj: object, dst: int = 0) -> list | None:
        if self.world_size == 1:
            return [obj]
        gathered = gather_object([obj])
        return gathered if self.rank == dst else None

    def barrier(self) -> None:
        PartialState().wait_for_everyone()

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise HermesBenchError("multiple-choice (loglikelihood) tasks are not supported yet: "
                               "use generate_until tasks")

    def loglikelihood_rolling(self, requests: list[Instance]) -> list[float]:
        raise HermesBenchError("perplexity (loglikelihood_rolling) tasks are not supported: "
                               "use generate_until tasks")


def _truncate(text: str, until: list[str] | str) -> str:
    for stop in [until] if isinstance(until, str) else until:
        if stop:
            text = text.split(stop)[0]
    return text


def limited_samples(tasks: dict, limit: int, unit_fields: dict[str, str]) -> dict[str, list[int]]:
    """--limit as lm-eval's per-task doc indices: the first `limit` docs, then the docs right after them that
    belong to the last one's unit (`unit_fields[task]`, e.g. an MME image keeps both of its questions)."""
    chosen = {}
    for name, task in tasks.items():
        docs = task.eval_docs
        n = min(limit, len(docs))
        field = unit_fields.get(name)
        if field and n:
            last = docs[n - 1][field]
            while n < len(docs) and docs[n][field] == last:
                n += 1
        chosen[name] = list(range(n))
    return chosen


def load_tasks(task_names: list[str], include_paths: list[Path]) -> dict:
    """lm-eval's task dict for the named tasks, data loaded and hooks imported: a task that cannot load fails here,
    before any model work."""
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    # lm-eval draws a bar per task while it builds requests; ours covers the model work.
    lm_eval_task.tqdm = functools.partial(tqdm, disable=True)
    manager = TaskManager(include_path=[str(p) for p in include_paths], include_defaults=False)
    try:
        return manager.load(task_names)
    except (ImportError, AttributeError, SyntaxError) as err:  # a !function that names no importable hook
        raise HermesBenchError(f"cannot load task {', '.join(task_names)}: {type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''}; fix the task YAML's !function "
                               "or its module") from None


def run_understanding(model: UnifiedModel, task_dict: dict, output: Path, batch_size: int, limit: int | None,
                      progress: bool = True, unit_fields: dict[str, str] | None = None) -> tuple[dict, dict, int]:
    """lm-eval's evaluate() on the loaded tasks: its results (with samples), its Task objects by name, and
    how many answers were computed rather than taken from the cache. A limit keeps each task's units whole
    (`unit_fields`: the doc field that names a leaf task's unit)."""
    cache = SampleCache(output, "understanding", PartialState().process_index)
    lm = UnifiedLM(model, cache, batch_size, progress)
    samples = None if limit is None else limited_samples(task_dict["tasks"], limit, unit_fields or {})
    results = evaluate(lm=lm, task_dict=task_dict, samples=samples, log_samples=True, bootstrap_iters=0,
                       verbosity="ERROR")
    return results or {}, task_dict["tasks"], cache.computed
