"""Every command's configuration, and the only place its defaults are written: the CLI's options take them from
here (`--help` shows them), and so does the Python API. Nothing here imports torch, so the CLI reads this file
without loading it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TASKS = ("shapes_pope", "shapes_mme", "shapes_geneval")
SHAPES_TASKS = (*DEFAULT_TASKS, "shapes_gap")  # the small shapes tasks, the homologous gap included
SELF, EXACT = "self", "exact"
JUDGE_HELP = ("Who answers questions about generated images: self (the model itself), exact (the shapes world's "
              "oracle), openai:MODEL (an OpenAI-compatible API: OPENAI_BASE_URL, OPENAI_API_KEY), or a model "
              "folder or hub id.")


@dataclass
class EvalConfig:
    """`hermes-bench eval`: which model, which tasks, and how to run them."""

    model: str | None = None  # None: the embedded default
    tasks: tuple[str, ...] = DEFAULT_TASKS
    include_paths: tuple[Path, ...] = ()
    output: Path | None = None  # None: results/runs/<model>
    data_dir: Path | None = None  # a local mirror of the hub datasets
    batch_size: int = 32
    limit: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    guidance_scale: float | None = None  # None: the model's default
    detector_model: str | None = None  # GenEval: Mask2Former id or folder instead of the task's
    clip_model: str | None = None  # GenEval, coco30k: CLIP id or folder instead of the task's
    fid_features: Path | None = None  # coco30k: the FID Inception's weights file (None: torch hub's checkpoints)
    judge: str | None = None  # None: each task's own judge (JUDGE_HELP)
    progress: bool = True


@dataclass
class ScoreConfig:
    """Scoring images another model made, in a benchmark's reference layout."""

    benchmark: str  # one of runners.SCORABLE
    folder: Path
    output: Path | None = None  # None: <folder>/hermes-bench
    device: str = "auto"
    seed: int = 0
    batch_size: int = 32
    limit: int | None = None  # coco30k: the first N captions of the task's order
    detector_model: str | None = None
    clip_model: str | None = None
    fid_features: Path | None = None
    judge: str | None = None
    prompts_dir: Path | None = None  # DPG-Bench
    csv: Path | None = None  # DPG-Bench
    compat: bool = False  # DPG-Bench: the reference's category quirk
    progress: bool = True


@dataclass
class CurationConfig:
    """How `align` samples and scores candidates each round (HermesFlow's curation)."""

    top_k: tuple[int, ...] = (2, 3, 4)
    temperatures: tuple[float, ...] = (0.1, 0.7, 2.0)
    caption_tokens: int = 100
    images: int = 16
    guidance_scale: float | None = None  # None: the model's default
    min_best_score: float = 0.6  # a generation pair is kept only if its best image scores above this
    pairing: str = "hermesflow"  # later rounds update the previous pairs; "on-policy": pairs from new samples only
    batch_size: int = 32
    seed: int = 0


@dataclass
class TrainingConfig:
    """Pair-DPO training within one round of `align`."""

    mode: str = "pair"
    form: str = "sum"
    beta: float = 0.5
    c_und: float = 1.0
    c_gen: float = 1.0
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup: int = 10
    steps: int = 300
    batch_size: int = 4
    grad_accum: int = 1
    condition_dropout: float = 0.1
    checkpoint_every: int = 25
    seed: int = 0
    round: int = 0  # with seed and the record, fixes a Monte-Carlo image log-prob's draw (Show-o's mask)
    lora_rank: int = 0  # 0: full fine-tuning; else LoRA of this rank through peft
    lora_alpha: float = 16.0
    lora_targets: str | None = None  # a regex over module names; None: the family's default
    gradient_checkpointing: bool = False  # recompute each decoder layer in backward: far less activation memory

    @property
    def mask_key(self) -> str:
        return f"round {self.round} seed {self.seed}"


@dataclass
class AlignConfig:
    """`hermes-bench align`: the self-play rounds, their data, judge and gate."""

    model: str | None = None  # None: the embedded model
    data: str | None = None  # None: the shapes world
    records: int = 1000
    data_seed: int = 7007  # shapes world: disjoint from every eval task's seed
    questions: Path | None = None  # JSONL of {id, questions} for data that has none
    question_generator: str | None = None  # a causal LM that writes questions for records still without any
    rounds: int = 3
    betas: tuple[float, ...] = (0.5, 0.2)  # a rolled-back round is retried with the next beta
    reference: str = "previous"
    judge: str = SELF  # who answers the questions about curated images (JUDGE_HELP)
    caption_scorer: str | None = None  # None: the scene-graph scorer (shapes) or bert-large-uncased; or a model id
    choice_matcher: str | None = None  # None: exact matching; or a sentence-embedding model id
    gate_tasks: tuple[str, ...] = SHAPES_TASKS  # shapes_gap's homologous gap decides; the rest guard against drops
    report_tasks: tuple[str, ...] = ()  # evaluated on the first and the final model, compared paired
    data_dir: Path | None = None  # the mirror that gate and report tasks read (eval's --data-dir)
    clip_model: str | None = None  # gate and report tasks' CLIP (eval's --clip-model)
    fid_features: Path | None = None  # coco30k's FID Inception weights (eval's --fid-features)
    tolerance: float = 0.01
    gate_limit: int | None = None  # at most N samples per gate task (quick runs; the default is all)
    output: Path = Path("results/align")
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    eval_batch_size: int = 32
    report_to: str = "none"  # tensorboard or wandb: accelerate's trackers, under <output>/trackers
    curation: CurationConfig = field(default_factory=CurationConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


@dataclass
class TrainConfig:
    """`hermes-bench world train`: the embedded shapes-world Janus's recipe."""

    seed: int = 0
    hidden: int = 128
    layers: int = 4
    vision_layers: int = 2
    scenes: int = 20000
    vq_assign_steps: int = 1500
    vq_steps: int = 4000
    vq_lr: float = 3e-3
    lm_steps: int = 5000
    lm_lr: float = 1e-3
    warmup: int = 200
    batch_size: int = 64
    focus_steps: int = 4000
    focus_lr: float = 5e-4
    condition_dropout: float = 0.1
    guidance_scale: float = 2.0
    guidance_candidates: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0, 6.0)  # validated after training; the best is kept
    device: str = "cpu"
