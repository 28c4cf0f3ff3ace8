"""Self-play rounds: curate with the last kept model, pair with HermesFlow's update rule, precompute reference
log-probs, train with Pair-DPO, gate on the benchmarks, keep or roll back.

Every stage writes its result into the round's folder before the next starts, so a rerun into the same output
resumes at the stage where a run stopped: curation, reference log-probs, training (from its last checkpoint) or
gating (the eval's own per-sample cache).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from accelerate import PartialState
from accelerate.utils import is_tensorboard_available, is_wandb_available

from hermes_bench import progress
from hermes_bench.align.curate import PAIRINGS, Samples, caption_samples, image_samples, pairs_table
from hermes_bench.align.data import load_questions, load_records
from hermes_bench.align.gate import Decision, compare
from hermes_bench.align.question_generation import LMQuestionGenerator
from hermes_bench.align.report import plot_rounds, write_table
from hermes_bench.align.sample_scores import (
    CaptionScorer,
    EmbeddingChoice,
    ImageScorer,
    ModelVQA,
    OracleVQA,
    SceneCaptionScorer,
    SimilarityCaptionScorer,
    TextEncoder,
)
from hermes_bench.align.trainer import SIDES, make_accelerator, reference_logprobs, train, trainable_ids
from hermes_bench.configs import AlignConfig, TrainingConfig
from hermes_bench.errors import HermesBenchError
from hermes_bench.evaluate import EvalConfig, evaluate
from hermes_bench.judges import EXACT, ChoiceMatcher, ExactChoice, check_judge, load_answerer
from hermes_bench.models import check_source, embedded_model_dir, load_model, resolve_device
from hermes_bench.models.base import UnifiedModel
from hermes_bench.processes import from_main, is_main, start, wait
from hermes_bench.registry import Registry
from hermes_bench.storage import (
    SampleCache,
    atomic_write_json,
    atomic_write_jsonl,
    check_writable,
    remove_partial_writes,
    stat_fingerprint,
)
from hermes_bench.summary import Scored

OPTIONS_FILE = "options.json"  # what the run's stages depend on: a rerun with other options is refused
# may change between a run and its resumption
RESUME_FREE = ("output", "report_tasks", "rounds", "report_to", "data_dir")
REFERENCES = ("previous", "initial")
TRACKERS = {"none": lambda: True, "tensorboard": is_tensorboard_available, "wandb": is_wandb_available}



def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


class Aligner:
    def __init__(self, config: AlignConfig, log: Callable[[str], None] = print) -> None:
        check_judge(config.judge)
        if config.reference not in REFERENCES:
            raise HermesBenchError(f"--reference {config.reference!r}: use one of {', '.join(REFERENCES)}")
        if config.curation.pairing not in PAIRINGS:
            raise HermesBenchError(f"--pairing {config.curation.pairing!r}: use one of {', '.join(PAIRINGS)}")
        if config.training.mode not in SIDES:
            raise HermesBenchError(f"--mode {config.training.mode!r}: use one of {', '.join(SIDES)}")
        if config.report_to not in TRACKERS:
            raise HermesBenchError(f"--report-to {config.report_to!r}: use one of {', '.join(TRACKERS)}")
        if config.report_to != "none" and not TRACKERS[config.report_to]():
            raise HermesBenchError(f"--report-to {config.report_to}: its package is not installed; pip install "
                                   f"'hermes-bench[{config.report_to}]'")
        start(resolve_device(config.device))
        self.config, self.log = config, log if is_main() else (lambda _: None)
        Registry().get([*config.gate_tasks, *config.report_tasks])  # unknown task names stop here, before any work
        self.initial = str(embedded_model_dir()) if config.model is None else config.model
        check_source(self.initial)
        for option, source in (("--caption-scorer", config.caption_scorer), ("--choice-matcher", config.choice_matcher),
                               ("--question-generator", config.question_generator)):
            if source:
                check_source(source, f"{option} folder")
        self.records = load_records(config.data, config.records, config.data_seed)
        if config.questions is not None:
            load_questions(self.records, config.questions)
        shapes = all(r.scene is not None for r in self.records)
        if config.judge == "exact" and not shapes:
            raise HermesBenchError("--judge exact needs the shapes world (no --data): real data has no oracle")
        self.by_id = {r.id: r for r in self.records}
        self._check_options()  # the first write into the output folder: everything above was checked first
        self.accelerator = _engine(config)
        self.tracked_steps = 0  # the trackers' step: training steps so far, over rounds and beta retries
        if "generation" in SIDES[config.training.mode]:
            self._ensure_questions()

    def _check_options(self) -> None:
        """A rerun resumes only what was made with the same options and initial weights; anything else stops
        here, before any work, rather than mixing stages of two runs."""
        c = self.config
        options = {k: v for k, v in _plain(c).items() if k not in RESUME_FREE}
        options["initial_model"] = stat_fingerprint(self.initial)
        path = c.output / OPTIONS_FILE
        if (found := from_main(_read(path) if is_main() else None)) is None:  # one reading, the main process'
            check_writable(c.output)
            if is_main():
                atomic_write_json(path, options)
            wait()
            return
        changed = sorted(k for k in options.keys() | found.keys() if options.get(k) != found.get(k))
        if changed:
            name = changed[0]
            raise HermesBenchError(f"{c.output} holds an alignment run made with other options ({name}: "
                                   f"{found.get(name)!r} there, {options.get(name)!r} now): pass another --output, "
                                   "or delete that folder to start fresh")

    def _ensure_questions(self) -> None:
        """Generation pairs need questions: records without any get them from the question generator (written
        to the output folder as a --questions file, which a rerun reuses), or the run stops here with the fix."""
        missing = [r for r in self.records if not r.questions]
        if not missing:
            return
        c = self.config
        if c.question_generator is None:
            raise HermesBenchError(f"record {missing[0].id} has no questions, which generation pairs need: pass "
                                   "--questions FILE.jsonl or --question-generator MODEL_ID, or --mode understanding")
        path = c.output / "questions.jsonl"
        if not path.is_file():
            self.log(f"writing questions for {len(missing)} records with {c.question_generator}")
            generator = LMQuestionGenerator(c.question_generator, resolve_device(c.device))
            written = generator.generate([r.caption for r in missing])
            if is_main():
                atomic_write_jsonl(path, [{"id": r.id, "questions": [q.stored() for q in qs]}
                                          for r, qs in zip(missing, written, strict=True)])
        wait()
        load_questions(self.records, path)
        self.log(f"questions: {sum(bool(r.questions) for r in missing)} of {len(missing)} records got at least one")

    def _load(self, path: str) -> UnifiedModel:
        return load_model(path, self.config.device, "float32")  # trained in float32, bf16 autocast on GPUs

    def _caption_scorer(self) -> CaptionScorer:
        name = self.config.caption_scorer
        if name is None and self.records[0].scene is not None:
            return SceneCaptionScorer()
        encoder = TextEncoder(name or "bert-large-uncased", "cls", resolve_device(self.config.device))
        return SimilarityCaptionScorer(encoder)

    def _image_scorer(self, model: UnifiedModel) -> ImageScorer:
        if self.config.judge == EXACT:
            return OracleVQA()
        name = self.config.choice_matcher
        matcher: ChoiceMatcher = ExactChoice()
        if name:
            matcher = EmbeddingChoice(TextEncoder(name, "mean", resolve_device(self.config.device)))
        judge = load_answerer(self.config.judge, model, self.config.device, "curation's questions")
        return ModelVQA(judge, matcher, self.config.eval_batch_size)

    def gate_eval(self, model: str, folder: Path, tasks: tuple[str, ...]) -> tuple[dict, list[Scored]]:
        c = self.config
        return evaluate(EvalConfig(model=model, tasks=tasks, output=folder, batch_size=c.eval_batch_size,
                                   limit=c.gate_limit, device=c.device, dtype=c.dtype, seed=c.seed,
                                   data_dir=c.data_dir, clip_model=c.clip_model, fid_features=c.fid_features,
                                   progress=progress.enabled()))

    def curate(self, model: UnifiedModel, folder: Path) -> dict[str, list[Samples] | None]:
        path = folder / "samples.json"
        if (found := _read(path)) is None:
            batches = SampleCache(folder, "curation", PartialState().process_index)  # per batch, for a resume
            sides = SIDES[self.config.training.mode]
            self.log(f"curating {len(self.records)} records ({', '.join(sides)})")
            found = {
                "understanding": [asdict(s) for s in caption_samples(model, self.records, self._caption_scorer(),
                                                                     self.config.curation, batches)]
                if "understanding" in sides else None,
                "generation": [asdict(s) for s in image_samples(model, self.records, self._image_scorer(model),
                                                                self.config.curation, batches)]
                if "generation" in sides else None}
            if is_main():
                atomic_write_json(path, found)
        return {k: [Samples(**s) for s in v] if v is not None else None for k, v in found.items()}

    def references(self, policy: UnifiedModel, pairs: dict, folder: Path, settings: TrainingConfig) -> dict:
        path = folder / "reference.json"
        if (found := _read(path)) is None:
            model = policy if self.config.reference == "previous" else self._load(self.initial)
            found = reference_logprobs(model, self.by_id, pairs, settings.mode,
                                       cache=SampleCache(folder, "reference", PartialState().process_index),
                                       mask_key=settings.mask_key)
            if is_main():
                atomic_write_json(path, found)
        return found

    def run(self) -> list[dict]:
        c = self.config
        out = c.output
        if is_main():
            remove_partial_writes(out)
        wait()
        kept = self.initial
        _, kept_scored = self.gate_eval(kept, out / "round-0" / "gate", c.gate_tasks)
        previous: dict = {}
        rows: list[dict] = []
        for index in range(1, c.rounds + 1):
            folder = out / f"round-{index}"
            policy = self._load(kept)
            samples = self.curate(policy, folder)
            pairs = pairs_table(self.records, samples["understanding"], samples["generation"], previous, c.curation)
            if is_main():
                atomic_write_json(folder / "pairs.json", pairs)
            round_settings = replace(c.training, round=index)
            refs = self.references(policy, pairs, folder, round_settings)
            counts = {side: sum(1 for p in pairs.values() if p.get(side)) for side in ("understanding", "generation")}
            decision: Decision | None = None
            for attempt, beta in enumerate(c.betas):
                candidate = folder / f"beta-{beta:g}"
                trained = candidate / "model"
                history = _read(candidate / "train_log.json")
                if history is None:
                    if attempt:  # training changes the model in place: a retry starts from a fresh copy
                        policy = self._load(kept)
                    settings = replace(round_settings, beta=beta)
                    self.log(f"round {index}: training on {len(trainable_ids(pairs, c.training.mode))} records "
                             f"(beta {beta:g})")
                    history = train(policy, self.by_id, pairs, refs, settings, candidate, self.log, self.accelerator,
                                    self.tracked_steps, save_to=trained)
                    if is_main():
                        atomic_write_json(candidate / "train_log.json", history)
                        shutil.rmtree(candidate / "checkpoints", ignore_errors=True)
                    wait()
                self.tracked_steps += len(history)
                _, scored = self.gate_eval(str(trained), candidate / "gate", c.gate_tasks)
                decision = from_main(compare(kept_scored, scored, c.tolerance, c.seed) if is_main() else None)
                rows.append(_row(index, beta, decision, counts, history[-1]))
                self.accelerator.log(_gate_stats(decision), step=self.tracked_steps)
                self.log(f"round {index} (beta {beta:g}): {'kept' if decision.keep else 'rolled back'}: "
                         f"{decision.reason}")
                if decision.keep:
                    kept, kept_scored, previous = str(trained), scored, pairs
                    break
            if is_main():
                atomic_write_json(folder / "decision.json", {"kept": kept, **decision.as_dict()})
            if not decision.keep:
                break
        if is_main():
            atomic_write_json(out / "rounds.json", {"initial": self.initial, "final": kept, "config": _plain(c),
                                                    "rounds": rows})
            write_table(rows, out)
            plot_rounds(rows, out / "rounds.png")
        if c.report_tasks:
            self.report(kept, out)
        self.accelerator.end_training()
        return rows

    def report(self, final: str, out: Path) -> None:
        """The first model against the final one on the report tasks, paired."""
        _, before = self.gate_eval(self.initial, out / "report" / "initial", self.config.report_tasks)
        _, after = self.gate_eval(final, out / "report" / "final", self.config.report_tasks)
        if is_main():
            atomic_write_json(out / "report.json", {"initial": self.initial, "final": final,
                                                    **compare(before, after, self.config.tolerance,
                                                              self.config.seed).as_dict()})


def _row(index: int, beta: float, decision: Decision, counts: dict, last: dict) -> dict:
    row = {"round": index, "beta": beta, "decision": "kept" if decision.keep else "rolled back",
           "reason": decision.reason, "pairs_understanding": counts["understanding"],
           "pairs_generation": counts["generation"], "final_loss": last["loss"]}
    for name, d in {**decision.sides, **decision.tasks}.items():
        row.update({f"{name}_before": d.before, f"{name}_after": d.after, f"{name}_delta": d.delta,
                    f"{name}_ci_low": d.ci[0], f"{name}_ci_high": d.ci[1]})
    return row


def _engine(config: AlignConfig):
    """One accelerate engine for every round; its trackers (if any) log under <output>/trackers."""
    accelerator = make_accelerator(config.training, resolve_device(config.device), config.report_to,
                                   config.output / "trackers")
    plain = _plain(config)
    hyperparameters = {k: v if isinstance(v, int | float | bool) else str(v)
                       for k, v in {**plain, **plain["training"]}.items() if k not in ("training", "curation")}
    accelerator.init_trackers("hermes-bench-align", config=hyperparameters)
    return accelerator


def _gate_stats(decision: Decision) -> dict[str, float]:
    """What the trackers get per round attempt: each gate score's paired change with its 95% interval, and the
    decision (1 kept, 0 rolled back)."""
    stats = {"gate/kept": float(decision.keep)}
    for name, d in {**decision.sides, **decision.tasks}.items():
        stats.update({f"gate/{name}/delta": d.delta, f"gate/{name}/ci_low": d.ci[0],
                      f"gate/{name}/ci_high": d.ci[1]})
    return stats


def _plain(config: AlignConfig) -> dict:
    return json.loads(json.dumps(asdict(config), default=str))


def align(config: AlignConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Run HermesFlow's self-play rounds: each round curates pairs with the last kept model, trains it with
    Pair-DPO, and keeps the result only if the gate tasks say it helped. Resumes a run found in config.output.

    Args:
        config: the model, data, judge, curation and training settings, the gate and the output folder.
        log: where progress lines go (`print` by default; silenced on processes other than the main one).

    Returns:
        One row per round attempt: the decision, pair counts, final loss, and every gate score before and after
        with its paired change and 95% interval (what rounds.json holds under "rounds").
    """
    return Aligner(config, log).run()

