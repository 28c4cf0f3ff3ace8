"""lm-eval hooks for the shapes-world understanding tasks: data from the world generator. Prompts and
scoring are the real benchmarks' (tasks/pope, tasks/mme)."""

from hermes_bench.scoring import mme
from hermes_bench.world import datasets


def pope_dataset(split: str, n_images: int, seed: int, **_):
    return datasets.pope(split, n_images, seed)


def mme_dataset(n_images: int, seed: int, **_):
    return datasets.mme(n_images, seed)


def mme_process_results(doc, results):
    """MME's item for the perception score and the four subtasks this world asks about."""
    item = mme.item(results[0], doc["answer"], doc["question_id"], doc["category"])
    return dict.fromkeys(("mme_perception_score", *datasets.MME_SUBTASKS), item)
