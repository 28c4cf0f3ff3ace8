"""The hermes-bench command line: parses options and delegates; no logic of its own."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import click

from hermes_bench import __version__, progress
from hermes_bench.configs import (
    JUDGE_HELP,
    SHAPES_TASKS,
    AlignConfig,
    CurationConfig,
    EvalConfig,
    ScoreConfig,
    TrainConfig,
    TrainingConfig,
)
from hermes_bench.errors import HermesBenchError
from hermes_bench.runners import SCORABLE


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _one_line(err: Exception) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"


class InternalError(UserError):
    exit_code = 1


def _friendly(fn: Callable) -> Callable:
    """HermesBenchError, or a file the system refused (an output folder that cannot be made, ...) -> one line on
    stderr and exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HermesBenchError as err:
            raise UserError(str(err)) from None
        except UnicodeDecodeError as err:
            raise UserError(f"a file is not UTF-8 text ({err.reason} at byte {err.start}): save it as UTF-8") \
                from None
        except OSError as err:
            if err.filename is None:
                raise UserError(_one_line(err)) from None
            raise UserError(f"{err.filename}: {err.strerror}: check the path and its permissions") from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as err:  # a bug, or an input not checked yet: one line; the traceback on request
            if os.environ.get("HERMES_BENCH_DEBUG"):
                raise
            raise InternalError(f"internal error ({_one_line(err)}); "
                                "rerun with HERMES_BENCH_DEBUG=1 for the traceback and report it") from None

    return wrapper


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    for name in ("lm_eval", "lm-eval", "accelerate", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


class PositiveNumbers(click.ParamType):
    """A comma list of numbers above 0, such as `0.2,0.5`."""

    name = "numbers"

    def convert(self, value, param, ctx) -> tuple[float, ...]:
        if isinstance(value, tuple):
            return value
        try:
            numbers = tuple(float(v) for v in _csv(value) or ())
        except ValueError:
            self.fail(f"{value!r} is not a comma list of numbers, such as 0.2,0.5", param, ctx)
        if not numbers or not all(math.isfinite(x) and x > 0 for x in numbers):
            self.fail(f"{value!r} needs finite numbers above 0, such as 0.2,0.5", param, ctx)
        return numbers


class Commands(click.Group):
    """Usage errors (a bad option value) print as one `error:` line with exit code 2, as other bad input does."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # an unknown top-level option, such as `hermes-bench --bogus`
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            raise UserError(err.format_message()) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise UserError(err.format_message()) from None


class Finite(click.ParamType):
    """A finite number of 0 or more (nan and inf are refused)."""

    name = "number"

    def convert(self, value, param, ctx) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or number < 0:
            self.fail(f"{value!r} must be a finite number of 0 or more", param, ctx)
        return number


COUNT = click.IntRange(min=1)  # sizes and step counts: 0 or less is a mistake, not "the default"
SEED = click.IntRange(0, 2**32 - 1)  # what numpy and torch seeding accept
FINITE = Finite()
POSITIVE = click.FloatRange(min=0, min_open=True)


def _no_progress(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        progress.disable()


# every command takes it, and so does the group: `hermes-bench --no-progress eval` or `hermes-bench eval --no-progress`
NO_PROGRESS = click.option("--no-progress", is_flag=True, expose_value=False, callback=_no_progress,
                           help="Hide progress bars (also HERMES_BENCH_NO_PROGRESS=1).")
FID_FEATURES = click.option("--fid-features", type=click.Path(dir_okay=False, path_type=Path), default=None,
                            help="coco30k: the FID Inception weights (pt_inception-2015-12-05-6726825d.pth). "
                                 "Default: torch hub's checkpoints folder.")


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(__version__, prog_name="hermes-bench")
@NO_PROGRESS
def main() -> None:
    """Measure the understanding-generation gap of unified multimodal models."""


EVAL, ALIGN, RECIPE = EvalConfig(), AlignConfig(), TrainConfig()
CURATION, TRAINING = ALIGN.curation, ALIGN.training


@main.command("eval", short_help="Evaluate understanding and generation; print U, G and the gap.")
@click.option("--model", default=None, help="Model folder or hub id. Default: the embedded shapes-world model.")
@click.option("--tasks", default=",".join(EVAL.tasks), show_default=True, help="Comma-separated task names.")
@click.option("--include-path", "include_paths", multiple=True, type=click.Path(path_type=Path),
              help="Extra folder of task YAMLs (repeatable).")
@click.option("--limit", type=COUNT, default=None, help="At most N samples (prompts for generation) per task.")
@click.option("--batch-size", type=COUNT, default=EVAL.batch_size, show_default=True,
              help="Questions or images per forward pass.")
@click.option("--device", default=EVAL.device, show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--dtype", default=EVAL.dtype, show_default=True,
              help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16.")
@click.option("--seed", type=SEED, default=EVAL.seed, show_default=True, help="Seeds sampling and generation.")
@click.option("--guidance-scale", type=FINITE, default=None, help="CFG scale for generation. Default: the model's.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Run folder (rerunning into it resumes). Default: results/runs/<model>.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Local mirror of the hub datasets (<dir>/<org>/<name>); also $HERMES_BENCH_DATA_DIR.")
@click.option("--detector-model", default=None, help="GenEval: Mask2Former id or folder (default: the task's).")
@click.option("--clip-model", default=None, help="GenEval, coco30k: CLIP id or folder (default: the task's).")
@FID_FEATURES
@click.option("--judge", default=None, help=JUDGE_HELP + " Default: each task's own (DPG-Bench has none).")
@NO_PROGRESS
@_friendly
def eval_command(model, tasks, include_paths, limit, batch_size, device, dtype, seed, guidance_scale, output,
                 data_dir, detector_model, clip_model, fid_features, judge) -> None:
    """Evaluate a model's understanding and generation and print the leaderboard with U, G and the gap."""
    _quiet_libraries()
    from hermes_bench.evaluate import run_eval
    from hermes_bench.report.leaderboard import render

    cfg = EvalConfig(model=model, tasks=_csv(tasks) or EVAL.tasks, include_paths=tuple(include_paths),
                     output=output, data_dir=data_dir, batch_size=batch_size, limit=limit, device=device,
                     dtype=dtype, seed=seed, guidance_scale=guidance_scale, detector_model=detector_model,
                     clip_model=clip_model, fid_features=fid_features, judge=judge, progress=progress.enabled())
    run = run_eval(cfg)
    if not run:  # not the main process
        return
    click.echo(f"model: {run['model']['name']}")
    click.echo(f"results: {run['output']}/results.json ({run['provenance']['timings']['total_s']:.1f} s)")
    click.echo(render([run], "md"), nl=False)


@main.command("align", short_help="Close the gap: curate pairs, train with Pair-DPO, keep rounds that help.")
@click.option("--model", default=None, help="Model folder or hub id. Default: the embedded shapes-world model.")
@click.option("--rounds", type=COUNT, default=ALIGN.rounds, show_default=True, help="Self-play rounds.")
@click.option("--data", default=None, help="Homologous data: a JSON/JSONL file (image, caption, questions?), a "
                                         "datasets id or folder. Default: the shapes world.")
@click.option("--records", type=COUNT, default=ALIGN.records, show_default=True,
              help="How many records to curate from.")
@click.option("--questions", type=click.Path(path_type=Path), default=None,
              help="JSONL of {id, questions: [{question, choices, answer}]} for data without questions.")
@click.option("--question-generator", default=None,
              help="Causal LM id or folder that writes TIFA-style questions for records that have none.")
@click.option("--mode", type=click.Choice(["pair", "understanding", "generation"]), default=TRAINING.mode,
              show_default=True, help="Pair-DPO, or the paper's understanding-only / generation-only ablations.")
@click.option("--form", type=click.Choice(["sum", "joint"]), default=TRAINING.form, show_default=True,
              help="sum: the official code's loss; joint: one sigmoid over both margins (the paper's formula).")
@click.option("--beta", "betas", type=PositiveNumbers(), default=",".join(f"{b:g}" for b in ALIGN.betas),
              show_default=True, help="DPO beta; a comma list retries a rolled-back round with the next value.")
@click.option("--coefficients", type=PositiveNumbers(), default=f"{TRAINING.c_und:g},{TRAINING.c_gen:g}",
              show_default=True, help="C_UND,C_GEN: the weights of the understanding and generation terms.")
@click.option("--lr", type=POSITIVE, default=TRAINING.lr, show_default=True, help="Learning rate (AdamW, cosine).")
@click.option("--steps", type=COUNT, default=TRAINING.steps, show_default=True, help="Training steps per round.")
@click.option("--train-batch-size", type=COUNT, default=TRAINING.batch_size, show_default=True,
              help="Records per step.")
@click.option("--grad-accum", type=COUNT, default=TRAINING.grad_accum, show_default=True,
              help="Gradient accumulation steps.")
@click.option("--checkpoint-every", type=COUNT, default=TRAINING.checkpoint_every, show_default=True,
              help="Steps between checkpoints.")
@click.option("--lora-rank", type=click.IntRange(min=0), default=TRAINING.lora_rank, show_default=True,
              help="Train LoRA adapters of this rank (peft) instead of every weight; 0: full fine-tuning.")
@click.option("--lora-alpha", type=POSITIVE, default=TRAINING.lora_alpha, show_default=True,
              help="LoRA's scaling numerator (the update is scaled by alpha / rank).")
@click.option("--lora-targets", default=None,
              help="Regex fully matching the module names LoRA adapts. Default: the family's language-model "
                   "attention and MLP projections.")
@click.option("--gradient-checkpointing", is_flag=True,
              help="Recompute each decoder layer in backward: much less activation memory for one more forward.")
@click.option("--report-to", type=click.Choice(["none", "tensorboard", "wandb"]), default=ALIGN.report_to,
              show_default=True, help="Send training and gate statistics to a tracker (logs in OUTPUT/trackers).")
@click.option("--images", type=COUNT, default=CURATION.images, show_default=True,
              help="Images generated per caption in curation.")
@click.option("--curation-batch-size", type=COUNT, default=CURATION.batch_size, show_default=True,
              help="Records per forward in curation (each with all its captions or images): lower it for big models.")
@click.option("--min-best-score", type=click.FloatRange(0, 1), default=CURATION.min_best_score, show_default=True,
              help="A generation pair is kept only if its best image scores above this.")
@click.option("--judge", default=ALIGN.judge, show_default=True, help=JUDGE_HELP + " Scores the images curated.")
@click.option("--caption-scorer", default=None,
              help="Caption similarity model id (default: the scene-graph scorer, or bert-large-uncased on real data).")
@click.option("--choice-matcher", default=None,
              help="Sentence-embedding model id mapping free-form answers to choices (default: exact matching).")
@click.option("--pairing", type=click.Choice(["hermesflow", "on-policy"]), default=CURATION.pairing,
              show_default=True, help="Later rounds' pairs: HermesFlow's update of the previous pairs, or best vs "
                                      "worst of the new samples only.")
@click.option("--reference", type=click.Choice(["previous", "initial"]), default=ALIGN.reference, show_default=True,
              help="The reference model of a round: the previous round's, or the first.")
@click.option("--gate-tasks", default=",".join(ALIGN.gate_tasks), show_default=True,
              help="Tasks that gate each round; a gap task's homologous gap decides, else U - G.")
@click.option("--gate-limit", type=COUNT, default=None, help="At most N samples per gate task (default: all).")
@click.option("--report-tasks", default=None, help="Tasks comparing the first and final models after the rounds.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=ALIGN.tolerance, show_default=True,
              help="A gate task may drop by this much (normalised) before the round is rolled back.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Local mirror of the hub datasets that gate and report tasks read (as eval's --data-dir).")
@click.option("--clip-model", default=None, help="Gate and report tasks (GenEval, coco30k): CLIP id or folder.")
@FID_FEATURES
@click.option("--output", type=click.Path(path_type=Path), default=ALIGN.output, show_default=True,
              help="Run folder; rerunning into it resumes.")
@click.option("--device", default=ALIGN.device, show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--dtype", default=ALIGN.dtype, show_default=True,
              help="Evaluation dtype (training runs in float32 with bf16 autocast on GPUs).")
@click.option("--seed", type=SEED, default=ALIGN.seed, show_default=True, help="Seeds curation and training.")
@NO_PROGRESS
@_friendly
def align_command(**o) -> None:
    """Close the gap with HermesFlow: curate preference pairs from the model's own outputs, train with Pair-DPO,
    repeat in self-play rounds; each round is kept only when the gate tasks say it helped."""
    _quiet_libraries()
    from hermes_bench.align.report import deltas_frame, summary_frame
    from hermes_bench.align.rounds import align
    from hermes_bench.processes import is_main
    from hermes_bench.report.leaderboard import table

    if len(o["coefficients"]) != 2:
        raise click.BadParameter(f"{o['coefficients']!r} needs two numbers, C_UND,C_GEN, such as 0.5,1",
                                 param_hint="--coefficients")
    training = TrainingConfig(mode=o["mode"], form=o["form"], c_und=o["coefficients"][0], c_gen=o["coefficients"][1],
                              lr=o["lr"], steps=o["steps"], batch_size=o["train_batch_size"],
                              grad_accum=o["grad_accum"], checkpoint_every=o["checkpoint_every"], seed=o["seed"],
                              lora_rank=o["lora_rank"], lora_alpha=o["lora_alpha"], lora_targets=o["lora_targets"],
                              gradient_checkpointing=o["gradient_checkpointing"])
    curation = CurationConfig(images=o["images"], batch_size=o["curation_batch_size"], pairing=o["pairing"],
                              min_best_score=o["min_best_score"], seed=o["seed"])
    config = AlignConfig(
        model=o["model"], data=o["data"], records=o["records"], questions=o["questions"],
        question_generator=o["question_generator"], rounds=o["rounds"], betas=o["betas"], reference=o["reference"],
        judge=o["judge"], caption_scorer=o["caption_scorer"], choice_matcher=o["choice_matcher"],
        gate_tasks=_csv(o["gate_tasks"]) or ALIGN.gate_tasks, report_tasks=_csv(o["report_tasks"]) or (),
        tolerance=o["tolerance"], gate_limit=o["gate_limit"], output=o["output"], device=o["device"],
        dtype=o["dtype"], seed=o["seed"], report_to=o["report_to"], data_dir=o["data_dir"],
        clip_model=o["clip_model"], fid_features=o["fid_features"], curation=curation, training=training)
    rows = align(config, log=click.echo)
    if not is_main():  # the main process reports
        return
    click.echo(table(summary_frame(rows), "md"), nl=False)
    click.echo(f"rounds: {config.output}/rounds.json")
    if config.report_tasks:
        report = json.loads((config.output / "report.json").read_text())
        click.echo(f"first vs final model on {', '.join(config.report_tasks)}:")
        click.echo(table(deltas_frame(report), "md"), nl=False)


@main.group("world", short_help="The embedded shapes world: train its model.")
def world_group() -> None:
    """The embedded shapes world: train its model."""


@world_group.command("train", short_help="Train the embedded shapes-world Janus from scratch.")
@click.option("--output", type=click.Path(path_type=Path), required=True, help="Folder for the trained model.")
@click.option("--seed", type=SEED, default=RECIPE.seed, show_default=True, help="Seeds scenes and initialisation.")
@click.option("--scenes", type=COUNT, default=RECIPE.scenes, show_default=True, help="Training scenes.")
@click.option("--vq-steps", type=COUNT, default=RECIPE.vq_steps, show_default=True, help="VQ tokenizer steps.")
@click.option("--lm-steps", type=COUNT, default=RECIPE.lm_steps, show_default=True,
              help="Joint language-model steps.")
@click.option("--focus-steps", type=click.IntRange(min=0), default=RECIPE.focus_steps, show_default=True,
              help="Focus-phase steps (position and count) after the joint phase.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@click.option("--guidance-scales", type=PositiveNumbers(), show_default=True,
              default=",".join(f"{g:g}" for g in RECIPE.guidance_candidates),
              help="CFG scales to validate; the best becomes the model's default.")
@click.option("--eval-limit", type=COUNT, default=None, help="At most N samples per task in the model card's eval.")
@NO_PROGRESS
@_friendly
def world_train_command(output, seed, scenes, vq_steps, lm_steps, focus_steps, device, guidance_scales,
                        eval_limit) -> None:
    """Train the shapes-world tiny Janus from scratch, pick its CFG scale, evaluate it, write its model card."""
    _quiet_libraries()
    from hermes_bench.embedded.recipe import train_embedded
    from hermes_bench.embedded.release import select_guidance, write_card
    from hermes_bench.evaluate import run_eval
    from hermes_bench.models import resolve_device
    from hermes_bench.storage import check_writable

    check_writable(output)
    config = TrainConfig(seed=seed, device=resolve_device(device), scenes=scenes, vq_steps=vq_steps,
                         lm_steps=lm_steps, focus_steps=focus_steps)
    record = train_embedded(output, config, log=click.echo)
    guidance = select_guidance(output, guidance_scales, device=config.device)
    click.echo("guidance validation: " + ", ".join(f"{k:g}: {v:.3f}" for k, v in guidance.items()))
    run = run_eval(EvalConfig(model=str(output), tasks=SHAPES_TASKS, output=output / "eval",
                              limit=eval_limit, device=config.device, progress=False))
    click.echo(f"model card: {write_card(output, record, guidance, run)}")


@main.command("tasks", short_help="List the registered tasks.")
@click.option("--include-path", "include_paths", multiple=True, type=click.Path(path_type=Path),
              help="Extra folder of task YAMLs (repeatable).")
@_friendly
def tasks_command(include_paths) -> None:
    """List the registered tasks: name, kind, headline metric and data source."""
    from tabulate import tabulate

    from hermes_bench.registry import Registry

    registry = Registry(list(include_paths))
    rows = [(s.name, s.kind, s.headline, s.source) for s in sorted(registry.tasks.values(), key=lambda s: s.name)]
    click.echo(tabulate(rows, headers=["task", "kind", "headline", "data source"], tablefmt="github"))


@main.command("leaderboard", short_help="Tabulate runs: Markdown, CSV, LaTeX or HTML.")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "latex", "html"]), default="md", show_default=True,
              help="Output format.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write to this file instead of stdout.")
@click.option("--details", is_flag=True, help="Add each task's breakdown: group members (e.g. POPE splits, MMMU "
                                              "disciplines) and extra metrics (e.g. MME cognition).")
@click.option("--reference", is_flag=True, help="Add published rows (reported in papers, with citations).")
@_friendly
def leaderboard_command(results, fmt, output, details, reference) -> None:
    """Tabulate one or more runs (results.json files or run folders)."""
    from hermes_bench.report.leaderboard import render
    from hermes_bench.storage import atomic_write_bytes, load_results

    text = render([load_results(p) for p in results], fmt, details, reference)
    if output:
        atomic_write_bytes(output, text.encode())
    else:
        click.echo(text, nl=False)


@main.command("score", short_help="Score images any model made (GenEval, DPG-Bench or coco30k layout).")
@click.argument("benchmark", type=click.Choice(SCORABLE))
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Where results go (rerunning resumes). Default: FOLDER/hermes-bench.")
@click.option("--detector-model", default=None, help="GenEval: Mask2Former id or folder.")
@click.option("--clip-model", default=None, help="GenEval, coco30k: CLIP id or folder.")
@FID_FEATURES
@click.option("--judge", default=None, help=JUDGE_HELP + " DPG-Bench's questions need a model judge.")
@click.option("--prompts", "prompts_dir", type=click.Path(path_type=Path), default=None,
              help="DPG-Bench: the benchmark's prompts folder.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="DPG-Bench: dpg_bench.csv.")
@click.option("--compat", is_flag=True, help="DPG-Bench: the reference's category quirk (last tile, un-zeroed).")
@click.option("--limit", type=COUNT, default=None, help="coco30k: score the first N captions of the task's order.")
@click.option("--batch-size", type=COUNT, default=ScoreConfig.batch_size, show_default=True,
              help="Images or questions per forward pass.")
@click.option("--device", default=ScoreConfig.device, show_default=True, help="cpu, cuda, cuda:N or auto.")
@NO_PROGRESS
@_friendly
def score_command(benchmark, folder, output, detector_model, clip_model, fid_features, judge, prompts_dir, csv_path,
                  compat, limit, batch_size, device) -> None:
    """Score images any model made, laid out as the benchmark's reference scripts expect
    (GenEval: FOLDER/<00000>/metadata.jsonl + samples/<0000>.png; DPG-Bench: FOLDER/<item_id>.png grids;
    coco30k: FOLDER/<row>.png, one per caption)."""
    _quiet_libraries()
    from hermes_bench.report.leaderboard import render
    from hermes_bench.score_images import score_images

    run = score_images(ScoreConfig(benchmark, folder, output, device, batch_size=batch_size, limit=limit,
                                   detector_model=detector_model, clip_model=clip_model, fid_features=fid_features,
                                   judge=judge,
                                   prompts_dir=prompts_dir, csv=csv_path, compat=compat, progress=progress.enabled()))
    if not run:  # not the main process
        return
    click.echo(f"results: {run['output']}/results.json")
    click.echo(render([run], "md", details=True), nl=False)
