"""Train the embedded tiny Janus on the shapes world from scratch: the VQ image tokenizer first, then the
vision encoder and language model jointly on yes/no questions with hard negatives, captions, and caption ->
image tokens (with condition dropout, so the unconditional branch that classifier-free guidance uses is trained);
then a focus phase for position and count (see `focus_on_position_and_count`). The VQ and joint stages are
saved: a killed run resumes.

Deterministic for a given seed, device and thread count. Inputs are built exactly as the processor builds
them at inference (same image normalisation, same token layout, same unconditional prompt as Janus' CFG).
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import JanusForConditionalGeneration, JanusProcessor

from hermes_bench.configs import TrainConfig
from hermes_bench.embedded.tiny import BOI, BOS, EOS, PAD, tiny_janus
from hermes_bench.models.base import mask_positions
from hermes_bench.progress import bar
from hermes_bench.storage import atomic_write_bytes, atomic_write_json, digest
from hermes_bench.tasks.mme.mme_utils import doc_to_text as mme_prompt
from hermes_bench.tasks.pope.pope_utils import doc_to_text as pope_prompt
from hermes_bench.world import language
from hermes_bench.world.questions import OPPOSITE, QUESTION_TYPES, clear_pairs, question_pairs, relations, unique
from hermes_bench.world.scene import CELL, COLORS, GRID, SHAPES, Scene, render, sample_scene


def pixel_tensor(scenes: list[Scene]) -> torch.Tensor:
    """Renders normalised as the processor does (rescale to [0, 1], mean 0.5, std 0.5), channels first."""
    pixels = np.stack([np.asarray(render(s), dtype=np.float32) for s in scenes]) / 255.0
    return torch.from_numpy((pixels - 0.5) / 0.5).permute(0, 3, 1, 2).contiguous()


def _relation_caption(scene: Scene, rng: random.Random, with_colors: bool) -> str | None:
    """GenEval's 'a X left of a Y' for two objects in one clear relation (either way round), else None."""
    if len(scene.objects) != 2:
        return None
    a, b = scene.objects
    rel = relations(a, b)
    if len(rel) != 1:
        return None
    a, b, r = (a, b, rel.pop()) if rng.random() < 0.5 else (b, a, OPPOSITE[rel.pop()])
    return language.relation_caption(a.name if with_colors else a.shape, r, b.name if with_colors else b.shape)


def training_caption(scene: Scene, rng: random.Random) -> str:
    """What the model learns to say about an image: the full caption, or for two objects in one clear relation
    (half the time) the relation caption, so captioning supervises position too."""
    relation = _relation_caption(scene, rng, with_colors=True) if rng.random() < 0.5 else None
    return relation or language.caption(scene)


def generation_caption(scene: Scene, rng: random.Random) -> str:
    """A description the generator must satisfy: the full caption, the caption without colours, or (half the
    time, when it applies) the relation caption, with or without colours."""
    with_colors = rng.random() < 0.5
    relation = _relation_caption(scene, rng, with_colors) if rng.random() < 0.5 else None
    return relation or language.caption(scene, colors=with_colors)


class Tokens:
    """Token ids laid out as JanusProcessor lays them out: BOS, then <begin_of_image> + 16 image tokens +
    <end_of_image> for each image, then the text; generation prompts end with <begin_of_image>."""

    def __init__(self, processor: JanusProcessor) -> None:
        self.tokenizer = processor.tokenizer
        self.image = processor.image_start_token + processor.image_token * processor.num_image_tokens + \
            processor.image_end_token
        self.image_start = processor.image_start_token

    def understanding(self, prompt: str, answer: str) -> tuple[list[int], int]:
        """(ids, number of answer tokens at the end, EOS included)."""
        ids = self.tokenizer(prompt.replace("<image>", self.image))["input_ids"]
        target = self.tokenizer(answer, add_special_tokens=False)["input_ids"] + [EOS]
        return ids + target, len(target)

    def generation(self, caption: str) -> list[int]:
        return self.tokenizer(caption + self.image_start)["input_ids"]


def left_pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        mask[i, width - len(row):] = 1
    return ids, mask


def unconditional(ids: torch.Tensor) -> torch.Tensor:
    """Janus' CFG branch: every token but BOS and <begin_of_image> replaced by the pad token."""
    return ids.masked_fill((ids != BOS) & (ids != BOI), PAD)


def _cosine_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _latents(vq, pixels: torch.Tensor) -> torch.Tensor:
    """Unit-norm latents, one per grid cell: (batch, dim, 4, 4)."""
    return F.normalize(vq.quant_conv(vq.encoder(pixels)), dim=1)


def _code_logits(vq, pixels: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each cell's latent to each unit code (what encode()'s L2 argmin ranks by, once the
    codes are stored unit-norm): (batch * 16, codes)."""
    z = _latents(vq, pixels)
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    return flat @ F.normalize(vq.quantize.embedding.weight, dim=1).T


def cell_contents(pixels: torch.Tensor, cell: int = CELL) -> tuple[torch.Tensor, int]:
    """Cluster the grid cells' pixel patches (k-means at zero error: the world draws every cell from a fixed set
    of templates, so the clusters are the distinct patches). Returns each cell's cluster, (images, 16), and
    the number of clusters."""
    patches = F.unfold(pixels, cell, stride=cell).transpose(1, 2)  # (images, cells, 3 * cell * cell)
    contents, labels = torch.unique(patches.reshape(-1, patches.shape[-1]), dim=0, return_inverse=True)
    return labels.view(patches.shape[0], -1), len(contents)


def train_vq(model: JanusForConditionalGeneration, pixels: torch.Tensor, config: TrainConfig,
             log: Callable[[str], None]) -> None:
    """The VQ tokenizer, one code per cluster of cell patches, in two parts: the encoder (and codebook) learn to
    assign each cell its code (cross-entropy over cosine similarities); then the decoder learns to render the
    image from the unit codes exactly as decode() feeds them (MSE, object pixels weighted up: they are few but
    carry everything)."""
    vq = model.model.vqmodel.train()
    labels, n_codes = cell_contents(pixels)
    if n_codes > vq.quantize.num_embeddings:
        raise ValueError(f"{n_codes} kinds of cell need more than the VQ's {vq.quantize.num_embeddings} codes")
    log(f"vq: {n_codes} kinds of cell, one code each")
    generator = torch.Generator().manual_seed(config.seed)
    parts = [("assign", config.vq_assign_steps, [*vq.encoder.parameters(), *vq.quant_conv.parameters(),
                                                  *vq.quantize.parameters()]),
             ("render", config.vq_steps, [*vq.decoder.parameters(), *vq.post_quant_conv.parameters()])]
    for part, steps, params in parts:
        optimizer = torch.optim.Adam(params, lr=config.vq_lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.vq_lr, total_steps=steps, pct_start=0.05)
        for step in bar(range(steps), f"world train: vq {part}"):
            pick = torch.randint(len(pixels), (16,), generator=generator)
            batch, target = pixels[pick].to(config.device), labels[pick].to(config.device)
            if part == "assign":
                loss = F.cross_entropy(_code_logits(vq, batch) / 0.1, target.reshape(-1))
            else:
                with torch.no_grad():
                    codes = F.normalize(vq.quantize.embedding.weight, dim=1)[target]  # (batch, 16, dim)
                recon = vq.decoder(vq.post_quant_conv(codes.view(len(pick), GRID, GRID, -1).permute(0, 3, 1, 2)))
                weight = 1 + 4 * (batch < 0.99).any(1, keepdim=True).float()
                loss = ((recon - batch) ** 2 * weight).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 250 == 0 or step == steps - 1:
                log(f"vq {part} step {step}: loss {loss.item():.4f}")
    with torch.no_grad():  # store unit codes, so encode()'s L2 argmin equals the cosine argmax trained here
        vq.quantize.embedding.weight.copy_(F.normalize(vq.quantize.embedding.weight, dim=1))
    vq.eval()


@torch.no_grad()
def encode_codes(model: JanusForConditionalGeneration, pixels: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """The VQ's image tokens, (images, 16)."""
    vq = model.model.vqmodel
    return torch.cat([_code_logits(vq, pixels[i:i + batch]).argmax(-1).view(-1, GRID * GRID)
                      for i in range(0, len(pixels), batch)])


@torch.no_grad()
def reconstruction_exactness(model, processor: JanusProcessor, scenes: list[Scene], device: str) -> float:
    """Share of scenes whose VQ round trip (encode, decode) the exact detector reads back as the same scene."""
    from hermes_bench.judges import read_scene

    pixels = model.model.vqmodel.decode(encode_codes(model, pixel_tensor(scenes).to(device))).float().cpu()
    images = processor.postprocess(list(pixels), return_tensors="PIL.Image.Image")["pixel_values"]
    return sum(read_scene(im) == s for s, im in zip(scenes, images, strict=True)) / len(scenes)


@dataclass
class Examples:
    """Pre-tokenised training examples; `scene` indexes the pixel / code tensors."""

    understanding: list[tuple[int, list[int], int, str]]  # scene, ids, answer length, question type
    open_questions: list[tuple[int, list[int], int, str]]  # where / relation / how many, same layout
    captions: list[tuple[int, list[int], int]]
    generation: list[tuple[int, list[int]]]


OPEN_KINDS = ("where", "relation", "how many")


def open_questions(scene: Scene) -> list[tuple[str, str, str]]:
    """Training-only questions with a direct answer, (kind, question, answer): where each uniquely named object
    is ("row two, column three"), how two of them in one clear relation are placed ("left of"), and how many
    there are of each name and shape in the scene ("two"). Position and count yes/no questions reduce to these."""
    found = [("where", language.where_question(o.name), language.where_answer(o.row, o.col))
             for o in unique(scene, lambda o: o.name)]
    for a, b, relation in clear_pairs(scene):
        found += [("relation", language.relation_question(a.name, b.name), relation),
                  ("relation", language.relation_question(b.name, a.name), OPPOSITE[relation])]
    shapes = sorted({o.shape for o in scene.objects})
    for shape, color in sorted({(o.shape, o.color) for o in scene.objects}) + [(s, None) for s in shapes]:
        name = f"{color} {shape}" if color else shape
        found.append(("how many", language.how_many_question(name), language.NUMBERS[scene.count(shape, color)]))
    return found


def build_examples(scenes: list[Scene], tokens: Tokens, rng: random.Random) -> Examples:
    understanding, open_rows, captions, generation = [], [], [], []
    for i, scene in enumerate(scenes):
        for kind, question, answer in open_questions(scene):
            ids, n = tokens.understanding(pope_prompt({"question": question}), answer)
            open_rows.append((i, ids, n, kind))
        for true, false in question_pairs(scene, rng):
            for q, answer in ((true, "Yes"), (false, "No")):
                prompt = pope_prompt({"question": q.text}) if rng.random() < 0.5 else \
                    mme_prompt({"question": q.text + language.YES_NO_SUFFIX})
                ids, n = tokens.understanding(prompt, answer)
                understanding.append((i, ids, n, q.kind))
        ids, n = tokens.understanding("<image>" + language.CAPTION_PROMPT, training_caption(scene, rng))
        captions.append((i, ids, n))
        generation.append((i, tokens.generation(generation_caption(scene, rng))))
    return Examples(understanding, open_rows, captions, generation)


def understanding_loss(model, rows, pixels, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over answer tokens, and per-row whether every answer token was the argmax."""
    ids, mask = left_pad([r[1] for r in rows])
    labels = torch.full_like(ids, -100)
    for i, r in enumerate(rows):
        labels[i, -r[2]:] = ids[i, -r[2]:]
    ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=mask_positions(mask),
                pixel_values=pixels[[r[0] for r in rows]].to(device))
    logits, targets = out.logits[:, :-1], labels[:, 1:]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)
    correct = ((logits.argmax(-1) == targets) | (targets == -100)).all(-1)
    return loss, correct


def generation_loss(model, rows, codes, device, dropout: float, generator: torch.Generator) -> torch.Tensor:
    """Cross-entropy of the image tokens given the caption (or, with probability `dropout`, the
    unconditional prompt), teacher-forced through the generation head."""
    ids, mask = left_pad([r[1] for r in rows])
    drop = torch.rand(len(rows), generator=generator) < dropout
    ids[drop] = unconditional(ids[drop])
    target = codes[[r[0] for r in rows]]
    ids, mask, target = ids.to(device), mask.to(device), target.to(device)
    embeds = torch.cat([model.get_input_embeddings()(ids),
                        model.prepare_embeddings_for_image_generation(target[:, :-1])], dim=1)
    full_mask = torch.cat([mask, torch.ones_like(target[:, :-1])], dim=1)
    hidden = model.model.language_model(inputs_embeds=embeds, attention_mask=full_mask,
                                        position_ids=mask_positions(full_mask)).last_hidden_state
    logits = model.model.generation_head(hidden[:, ids.shape[1] - 1:])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1))


def _train_mode(model) -> None:
    """Training mode for everything but the VQ, which stays frozen (its codes are the generation targets)."""
    model.train()
    model.model.vqmodel.eval()


def _trainable(model) -> list[torch.nn.Parameter]:
    _train_mode(model)
    return [p for name, p in model.named_parameters() if not name.startswith("model.vqmodel.")]


def _update(optimizer, params, loss: torch.Tensor) -> None:
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()


def _monitor(model, held_out: Examples, held_pixels, config: TrainConfig, line: str,
             log: Callable[[str], None]) -> None:
    model.eval()
    accuracy = held_out_accuracy(model, held_out, held_pixels, config.device)
    _train_mode(model)
    log(line + " | held-out " + " ".join(f"{k} {v:.2f}" for k, v in accuracy.items()))


def train_lm(model, examples: Examples, pixels, codes, config: TrainConfig, log: Callable[[str], None],
             held_out: Examples, held_pixels) -> None:
    """Vision encoder + aligners + language model + generation head, jointly; the VQ stays frozen."""
    params = _trainable(model)
    optimizer = torch.optim.AdamW(params, lr=config.lm_lr, weight_decay=0.01, betas=(0.9, 0.98))
    schedule = _cosine_schedule(optimizer, config.warmup, config.lm_steps)
    rng = random.Random(config.seed + 1)
    generator = torch.Generator().manual_seed(config.seed + 1)
    b = config.batch_size
    for step in bar(range(config.lm_steps), "world train: joint"):
        u_loss, _ = understanding_loss(model, rng.sample(examples.understanding, b), pixels, config.device)
        c_loss, _ = understanding_loss(model, rng.sample(examples.captions, b // 2), pixels, config.device)
        g_loss = generation_loss(model, rng.sample(examples.generation, b // 2), codes, config.device,
                                 config.condition_dropout, generator)
        _update(optimizer, params, u_loss + c_loss + g_loss)
        schedule.step()
        if step % 200 == 0 or step == config.lm_steps - 1:
            _monitor(model, held_out, held_pixels, config, f"lm step {step}: understanding {u_loss.item():.3f} "
                     f"caption {c_loss.item():.3f} generation {g_loss.item():.3f}", log)
    model.eval()


def focus_on_position_and_count(model, examples: Examples, pixels, codes, config: TrainConfig,
                                log: Callable[[str], None], held_out: Examples, held_pixels) -> None:
    """A second phase for position and count questions, which the joint phase leaves at chance (position) and
    below 0.9 (count): with their hard negatives (the same two objects, the opposite relation; a count off by
    one) no single feature points to the answer. Each step trains on questions of every type plus extra position
    and count questions, on the open questions they reduce to (where each object is, how two are placed, how many
    there are: direct targets for the lookup and the comparison), and on some captions and generation so the rest
    holds. Fresh AdamW at a constant learning rate."""
    params = _trainable(model)
    optimizer = torch.optim.AdamW(params, lr=config.focus_lr, weight_decay=0.01, betas=(0.9, 0.98))
    rng = random.Random(config.seed + 2)
    generator = torch.Generator().manual_seed(config.seed + 2)
    position = [r for r in examples.understanding if r[3] == "position"]
    count = [r for r in examples.understanding if r[3] == "count"]
    # twice as many where-questions: position only rises once they are answered
    open_kinds = [([r for r in examples.open_questions if r[3] == kind], share)
                  for kind, share in zip(OPEN_KINDS, (2, 1, 1), strict=True)]
    b = config.batch_size
    for step in bar(range(1, config.focus_steps + 1), "world train: focus"):
        asked = rng.sample(examples.understanding, b // 2) + rng.sample(position, b * 3 // 8) + \
            rng.sample(count, b // 8)
        u_loss, _ = understanding_loss(model, asked, pixels, config.device)
        opened = [r for rows, share in open_kinds for r in rng.sample(rows, b * share // 4)]
        o_loss, _ = understanding_loss(model, opened, pixels, config.device)
        c_loss, _ = understanding_loss(model, rng.sample(examples.captions, b // 4), pixels, config.device)
        g_loss = generation_loss(model, rng.sample(examples.generation, b // 4), codes, config.device,
                                 config.condition_dropout, generator)
        _update(optimizer, params, u_loss + o_loss + c_loss + g_loss)
        if step % 100 == 0 or step == config.focus_steps:
            _monitor(model, held_out, held_pixels, config, f"focus step {step}: understanding {u_loss.item():.3f} "
                     f"open {o_loss.item():.3f} caption {c_loss.item():.3f} generation {g_loss.item():.3f}", log)
    model.eval()


@torch.no_grad()
def held_out_accuracy(model, held_out: Examples, pixels, device, batch: int = 256) -> dict[str, float]:
    """Teacher-forced exact-answer accuracy per question type on held-out scenes (a quick training monitor;
    the benchmarks measure with generated answers)."""
    hits: dict[str, list[bool]] = {k: [] for k in (*QUESTION_TYPES, *OPEN_KINDS)}
    rows = held_out.understanding + held_out.open_questions
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        _, correct = understanding_loss(model, chunk, pixels, device)
        for r, ok in zip(chunk, correct.tolist(), strict=True):
            hits[r[3]].append(ok)
    return {k: sum(v) / len(v) for k, v in hits.items() if v}


def _save_stage(path: Path, state: dict[str, torch.Tensor]) -> None:
    buffer = io.BytesIO()  # written whole or not at all: a killed save must not be resumed from
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def train_embedded(out_dir: Path, config: TrainConfig, log: Callable[[str], None] = print) -> dict:
    """Build, train and save the embedded model; returns the training record for the model card. A rerun into
    the same folder resumes: after a finished VQ stage or joint phase, or not at all when the whole recipe
    finished."""
    finished = out_dir / ".stages" / "trained.json"
    if finished.is_file() and (record := json.loads(finished.read_text()))["config"] == asdict(config):
        return record
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    model, processor = tiny_janus(config.seed, config.hidden, config.layers, config.vision_layers,
                                  guidance_scale=config.guidance_scale)
    model.to(config.device)
    rng = random.Random(f"train-{config.seed}")
    scenes = [sample_scene(rng) for _ in range(config.scenes)]
    held_rng = random.Random(f"held-out-{config.seed}")
    held_scenes = [sample_scene(held_rng) for _ in range(200)]
    pixels, held_pixels = pixel_tensor(scenes), pixel_tensor(held_scenes)
    vq_recipe = (config.seed, config.hidden, config.scenes, config.vq_assign_steps, config.vq_steps, config.vq_lr)
    vq_stage = out_dir / ".stages" / f"vq-{digest(*vq_recipe)[:12]}.pt"
    resumed = []  # stages loaded from an earlier run, whose time `seconds` does not include
    if vq_stage.is_file():  # a finished VQ stage of this recipe: training resumes after it
        resumed.append("VQ")
        model.model.vqmodel.load_state_dict(torch.load(vq_stage, map_location=config.device, weights_only=True))
        model.model.vqmodel.eval()
    else:
        train_vq(model, pixels, config, log)
        _save_stage(vq_stage, model.model.vqmodel.state_dict())
    vq_seconds = time.perf_counter() - start
    exactness = reconstruction_exactness(model, processor, held_scenes, config.device)
    log(f"vq: {exactness:.1%} of held-out scenes read back exactly after encode + decode")
    codes = encode_codes(model, pixels.to(config.device)).cpu()
    codes_in_use = len(codes.unique())
    log(f"vq: {codes_in_use} codes in use over {len(scenes)} scenes")
    tokens = Tokens(processor)
    examples = build_examples(scenes, tokens, rng)
    held_out = build_examples(held_scenes, tokens, held_rng)
    with torch.no_grad():  # image-token embeddings start at their codebook vectors
        model.model.generation_embeddings.weight.copy_(model.model.vqmodel.quantize.embedding.weight)
    joint_recipe = {k: v for k, v in asdict(config).items() if not k.startswith("focus_")}
    joint_stage = out_dir / ".stages" / f"joint-{digest(joint_recipe)[:12]}.pt"
    if joint_stage.is_file():  # a finished joint phase of this recipe: training resumes after it
        resumed.append("joint")
        model.load_state_dict(torch.load(joint_stage, map_location=config.device, weights_only=True))
    else:
        train_lm(model, examples, pixels, codes, config, log, held_out, held_pixels)
        _save_stage(joint_stage, model.state_dict())
    focus_on_position_and_count(model, examples, pixels, codes, config, log, held_out, held_pixels)
    accuracy = held_out_accuracy(model, held_out, held_pixels, config.device)
    model.to("cpu").save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    record = {"config": asdict(config), "vq_seconds": round(vq_seconds, 1),
              "seconds": round(time.perf_counter() - start, 1), "resumed": resumed, "codes_in_use": codes_in_use,
              "vq_reconstruction_exactness": exactness, "held_out_teacher_forced_accuracy": accuracy,
              "vocabulary": {"colors": list(COLORS), "shapes": list(SHAPES)}}
    atomic_write_json(finished, record)
    return record
