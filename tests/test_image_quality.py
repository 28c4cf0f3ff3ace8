"""coco30k: FID and CLIP score on torchmetrics, checked against direct computations; end to end on a tiny COCO
mirror (the hub dataset's schema) with random FID Inception weights in the real file layout and a tiny CLIP;
resumed after a kill; and two processes against one."""

import json
import os
import pickle
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner
from launch import run_python
from PIL import Image
from safetensors import safe_open
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from transformers import CLIPModel, CLIPProcessor

from hermes_bench.align.gate import compare
from hermes_bench.align.report import deltas_frame
from hermes_bench.cli import main
from hermes_bench.configs import EvalConfig
from hermes_bench.errors import HermesBenchError
from hermes_bench.evaluate import evaluate
from hermes_bench.report.leaderboard import render
from hermes_bench.runners.coco30k import CACHE_ENV, image_path
from hermes_bench.scoring import image_quality as iq
from hermes_bench.scoring.fid_inception import WEIGHT_FILES, FIDInception, load_fid_inception, resize_like_tf1

MIRROR_ID = "sayakpaul/coco-30-val-2014"


def frechet_numpy(real: np.ndarray, fake: np.ndarray) -> float:
    """The Frechet distance of two Gaussians fitted to the features, as pytorch-fid computes it (scipy's sqrtm)."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


class TinyFeatures(nn.Module):
    """uint8 images -> 8 features: a feature network small enough to check FID by hand."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(images.float() / 25.5)).mean((2, 3))


def test_fid_through_torchmetrics_with_a_feature_network_equals_the_frechet_distance_of_its_features():
    generator = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (40, 3, 16, 16), generator=generator, dtype=torch.uint8)
    fake = (real.float() * 0.6 + torch.randint(0, 90, real.shape, generator=generator)).to(torch.uint8)
    net = TinyFeatures()
    metric = FrechetInceptionDistance(feature=net)  # torchmetrics runs the network itself
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.no_grad():
        real_features, fake_features = net(real), net(fake)
    expected = frechet_numpy(real_features.double().numpy(), fake_features.double().numpy())
    assert expected > 0.1
    assert metric.compute().item() == pytest.approx(expected, rel=1e-5)
    ours = iq.frechet_metric(8)  # features computed outside, in batches, as coco30k feeds them
    for chunk in real_features.split(7):
        ours.update(chunk, real=True)
    for chunk in fake_features.split(9):
        ours.update(chunk, real=False)
    assert ours.compute().item() == pytest.approx(expected, rel=1e-5)
    same = iq.frechet_metric(8)
    same.update(real_features, real=True)
    same.update(real_features, real=False)
    assert abs(same.compute().item()) < 1e-4 * expected


def test_real_statistics_survive_a_save_and_load(tmp_path):
    features = torch.randn(30, 8, generator=torch.Generator().manual_seed(2))
    first = iq.frechet_metric(8)
    first.update(features, real=True)
    iq.save_real_stats(first, tmp_path / "stats.safetensors", {"dataset": "x"})
    second = iq.frechet_metric(8)
    assert iq.load_real_stats(second, tmp_path / "stats.safetensors")
    for metric in (first, second):
        metric.update(features[:15] + 0.5, real=False)
    assert second.compute().item() == first.compute().item()
    (tmp_path / "torn.safetensors").write_bytes(b"\x10\x00")
    assert not iq.load_real_stats(iq.frechet_metric(8), tmp_path / "torn.safetensors")


def _tf1_resize_by_hand(image: np.ndarray, size: int) -> np.ndarray:
    """TensorFlow 1's resize_bilinear(align_corners=False), pixel by pixel in float64: source = target * in / out."""
    height, width = image.shape[-2:]
    out = np.empty((*image.shape[:-2], size, size))
    for i in range(size):
        y = i * height / size
        y0, y1, fy = int(y), min(int(y) + 1, height - 1), y - int(y)
        for j in range(size):
            x = j * width / size
            x0, x1, fx = int(x), min(int(x) + 1, width - 1), x - int(x)
            top = image[..., y0, x0] * (1 - fx) + image[..., y0, x1] * fx
            bottom = image[..., y1, x0] * (1 - fx) + image[..., y1, x1] * fx
            out[..., i, j] = top * (1 - fy) + bottom * fy
    return out


def test_the_inception_resize_is_tensorflow_1s_bilinear():
    image = torch.randint(0, 256, (1, 3, 23, 17), generator=torch.Generator().manual_seed(3)).float()
    ours = resize_like_tf1(image, 41).numpy()
    assert np.allclose(ours, _tf1_resize_by_hand(image.numpy().astype(np.float64), 41), atol=1e-3)
    assert not np.allclose(ours, torch.nn.functional.interpolate(image, size=(41, 41), mode="bilinear",
                                                                 align_corners=False).numpy(), atol=1e-3)


def test_the_fid_inception_loads_its_weights_file_and_says_what_is_missing(fid_weights, tmp_path, monkeypatch):
    network, fingerprint = load_fid_inception(fid_weights)
    images = torch.randint(0, 256, (3, 3, 64, 48), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    features = network(images)
    assert features.shape == (3, 2048) and features.dtype == torch.float32
    assert features.std(0).mean() > 1e-3  # the features tell the images apart
    antialiased, other = load_fid_inception(fid_weights, "antialias")
    assert other != fingerprint and not torch.allclose(antialiased(images), features)
    network.train()
    assert not network.training  # batch norm keeps its statistics whatever a caller does

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(HermesBenchError, match=r"pt_inception-2015-12-05-6726825d\.pth.*download https://"):
        load_fid_inception(None)
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    shutil.copy(fid_weights, tmp_path / "torch" / "hub" / "checkpoints" / WEIGHT_FILES[1])  # torch-fidelity's name
    assert load_fid_inception(None)[1] == fingerprint
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    (tmp_path / "code.pth").write_bytes(pickle.dumps(Killed))  # a pickle that names code: never loaded
    for name in ("other.pth", "garbage.pth", "code.pth"):
        with pytest.raises(HermesBenchError, match="is not the FID Inception's weights") as err:
            load_fid_inception(tmp_path / name)
        assert "\n" not in str(err.value)


def _mirror_rows(mirror):
    return datasets.load_dataset(str(mirror / MIRROR_ID), split="train")


def test_clip_score_equals_a_direct_computation(tiny_clip, coco_mirror):
    rows = _mirror_rows(coco_mirror)
    images, captions = [r["image"].convert("RGB") for r in rows], [r["caption"] for r in rows]
    metric = iq.CaptionClipScore(lambda: (CLIPModel.from_pretrained(tiny_clip),
                                          CLIPProcessor.from_pretrained(tiny_clip)))
    metric.update(torch.arange(5), [iq.as_uint8(im) for im in images[:5]], captions[:5])
    metric.update(torch.arange(5, len(images)), [iq.as_uint8(im) for im in images[5:]], captions[5:])
    model, processor = CLIPModel.from_pretrained(tiny_clip).eval(), CLIPProcessor.from_pretrained(tiny_clip)
    with torch.no_grad():  # from the towers and projections, not get_*_features
        pixels = processor(images=images, return_tensors="pt").pixel_values
        image_embeds = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        tokens = processor(text=captions, return_tensors="pt", padding=True)
        text_embeds = model.text_projection(model.text_model(**tokens).pooler_output)
    direct = 100 * torch.nn.functional.cosine_similarity(image_embeds, text_embeds)
    per_caption = metric.per_caption()
    assert list(per_caption) == list(range(len(images)))
    assert torch.allclose(torch.tensor(list(per_caption.values())), direct, atol=1e-3)
    assert (direct < 0).any() and direct.mean() > 0  # the floor is on the mean, as CLIPScore's compute()
    assert metric.compute().item() == pytest.approx(max(direct.mean().item(), 0.0), abs=1e-3)


def _options(fid_weights, tiny_clip):
    return ["--fid-features", str(fid_weights), "--clip-model", str(tiny_clip), "--no-progress"]


@pytest.fixture(scope="module")
def coco_run(coco_mirror, fid_weights, tiny_clip, tmp_path_factory):
    """The embedded shapes-world model on the mirror's captions (shapes-world scenes, as it was trained on)."""
    out = tmp_path_factory.mktemp("coco-run")
    result = CliRunner().invoke(main, ["eval", "--tasks", "coco30k", "--data-dir",
                                       str(coco_mirror), "--limit", "6", "--batch-size", "4", "--output", str(out),
                                       *_options(fid_weights, tiny_clip)])
    assert result.exit_code == 0, result.output
    return out


def _fid_by_hand(real_images, fake_images, fid_weights) -> float:
    network, _ = load_fid_inception(fid_weights)
    with torch.no_grad():
        real = network(iq.square_uint8(real_images, 256)).double().numpy()
        fake = network(iq.square_uint8(fake_images, 256)).double().numpy()
    return frechet_numpy(real, fake)


def test_eval_coco30k_generates_one_image_per_caption_and_scores_fid_and_clip(coco_run, coco_mirror, fid_weights):
    run = json.loads((coco_run / "results.json").read_text())
    metrics = run["results"]["coco30k"]
    samples = [json.loads(line) for line in (coco_run / "samples_coco30k.jsonl").open()]
    rows = [s["row"] for s in samples]
    assert len(rows) == metrics["images"] == 6 and len(set(rows)) == 6
    written = sorted(p.name for p in (coco_run / "images" / "coco30k").glob("*.png"))
    assert written == sorted(f"{r:05d}.png" for r in rows)
    data = _mirror_rows(coco_mirror)
    assert [s["caption"] for s in samples] == [data[r]["caption"] for r in rows]
    generated = [Image.open(image_path(coco_run / "images" / "coco30k", r)).convert("RGB") for r in rows]
    expected = _fid_by_hand([data[r]["image"] for r in rows], generated, fid_weights)
    assert metrics["fid"] == pytest.approx(expected, rel=1e-4) and expected > 0
    headline = run["headlines"]["coco30k"]
    assert headline["metric"] == "clip_score" and headline["kind"] == "quality"
    assert headline["value"] == pytest.approx(max(np.mean([s["clip_score"] for s in samples]), 0), abs=1e-4)
    lo, hi = headline["ci"]
    assert lo <= headline["value"] <= hi and lo < hi  # bootstrap over captions
    assert "U" not in run["summary"] and "G" not in run["summary"]  # image quality is beside U and G
    assert any(p["rows"] == 6 and p["dataset"] == f"dataset {MIRROR_ID} split train" and p["image_size"] == 256
               for p in _cached_stats(Path(os.environ[CACHE_ENV])))


def _cached_stats(cache: Path) -> list[dict]:
    """The provenance of each real-image statistics file in a cache folder."""
    found = []
    for path in sorted((cache / "fid_stats").glob("*.safetensors")):
        with safe_open(str(path), "pt") as fh:
            found.append(json.loads(fh.metadata()["provenance"]))
    return found


def test_the_leaderboard_shows_fid_beside_the_clip_score_and_the_papers_table_3(coco_run):
    run = {**json.loads((coco_run / "results.json").read_text()), "output": str(coco_run)}
    fid = f"{run['results']['coco30k']['fid']:.2f}"
    table = render([run], "md", reference=True)
    header = table.splitlines()[0]
    assert "| coco30k " in header and "| coco30k/fid " in header
    ours = next(line for line in table.splitlines() if "this run" in line)
    assert f" {fid} " in ours
    hermesflow = next(line for line in table.splitlines() if "HermesFlow 1.3B (reported, MSCOCO-30K)" in line)
    assert "31.08" in hermesflow and "9.07" in hermesflow and "Table 3" in hermesflow
    csv = render([run], "csv")
    assert "coco30k_ci_low" in csv.splitlines()[0] and "coco30k/fid" in csv.splitlines()[0]


def _real_images_folder(mirror, folder: Path, rotated: range = range(0)) -> Path:
    """The mirror's own images in coco30k's layout (<row>.png), those of `rotated` rows turned by 90 degrees: as
    generated images, identical to the real ones but for those."""
    folder.mkdir(parents=True)
    for row, record in enumerate(_mirror_rows(mirror)):
        record["image"].convert("RGB").rotate(90 if row in rotated else 0).save(image_path(folder, row))
    return folder


def test_score_reads_images_made_elsewhere_and_identical_sets_give_fid_zero(coco_mirror, fid_weights, tiny_clip,
                                                                            tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_BENCH_DATA_DIR", str(coco_mirror))
    folder = _real_images_folder(coco_mirror, tmp_path / "images")
    result = CliRunner().invoke(main, ["score", "coco30k", str(folder), "--output", str(tmp_path / "out"),
                                       "--batch-size", "3", *_options(fid_weights, tiny_clip)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "results.json").read_text())["results"]["coco30k"]
    assert metrics["images"] == 8
    assert abs(metrics["fid"]) < 1e-3  # the same images on both sides
    first = CliRunner().invoke(main, ["score", "coco30k", str(folder), "--output", str(tmp_path / "first"),
                                      "--limit", "3", *_options(fid_weights, tiny_clip)])
    assert first.exit_code == 0, first.output
    samples = [json.loads(line) for line in (tmp_path / "first" / "samples_coco30k.jsonl").open()]
    everything = [json.loads(line) for line in (tmp_path / "out" / "samples_coco30k.jsonl").open()]
    assert [s["row"] for s in samples] == [s["row"] for s in everything[:3]]  # the first 3 of the seeded order
    image_path(folder, 5).unlink()
    result = CliRunner().invoke(main, ["score", "coco30k", str(folder), "--output", str(tmp_path / "out2"),
                                       *_options(fid_weights, tiny_clip)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "1 of 8 images are missing" in result.output and "00005.png" in result.output


class Killed(BaseException):
    """A kill in the middle of a batch (BaseException: nothing in hermes-bench catches it)."""


def test_a_killed_scoring_run_resumes_without_recomputing_finished_batches(coco_mirror, fid_weights, tiny_clip,
                                                                           tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_BENCH_DATA_DIR", str(coco_mirror))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    folder = _real_images_folder(coco_mirror, tmp_path / "images", rotated=range(8))  # no feature shared with real
    (folder / "extra.txt").write_text("not an image of ours")
    args = ["score", "coco30k", str(folder), "--batch-size", "2", *_options(fid_weights, tiny_clip)]
    calls = {"features": 0, "clip": 0}
    network_forward, clip_update = FIDInception.forward, iq.CaptionClipScore.update

    def counted_forward(self, images):
        calls["features"] += 1
        return network_forward(self, images)

    def clip_update_killed_at_the_third(self, *args, **kwargs):
        calls["clip"] += 1
        if calls["clip"] == 3:
            raise Killed
        return clip_update(self, *args, **kwargs)

    monkeypatch.setattr(FIDInception, "forward", counted_forward)
    monkeypatch.setattr(iq.CaptionClipScore, "update", clip_update_killed_at_the_third)
    with pytest.raises(Killed):
        CliRunner().invoke(main, [*args, "--output", str(tmp_path / "resumed")])
    assert calls == {"features": 4 + 3, "clip": 3}  # real: 4 batches (cached stats); generated: 2 done, 3rd in flight
    assert len(_cached_stats(tmp_path / "cache")) == 1
    calls.update(features=0, clip=0)
    monkeypatch.setattr(iq.CaptionClipScore, "update", clip_update)
    resumed = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "resumed")])
    assert resumed.exit_code == 0, resumed.output
    assert calls["features"] == 1  # the last batch; the 3rd batch's features were kept before the kill
    fresh = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "fresh")])
    assert fresh.exit_code == 0, fresh.output
    results = [json.loads((tmp_path / name / "results.json").read_text()) for name in ("resumed", "fresh")]
    assert results[0]["results"] == results[1]["results"]
    assert results[0]["headlines"]["coco30k"]["ci"] == results[1]["headlines"]["coco30k"]["ci"]


def test_missing_inception_weights_or_clip_stop_in_one_line_before_any_generation(coco_mirror, fid_weights,
                                                                                  tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    base = ["eval", "--tasks", "coco30k", "--data-dir", str(coco_mirror), "--limit", "2", "--no-progress"]
    no_weights = CliRunner().invoke(main, [*base, "--clip-model", str(tiny_clip), "--output", str(tmp_path / "a")])
    assert no_weights.exit_code == 2 and "Traceback" not in no_weights.output
    assert "pt_inception-2015-12-05-6726825d.pth" in no_weights.output and "--fid-features" in no_weights.output
    no_clip = CliRunner().invoke(main, [*base, "--fid-features", str(fid_weights), "--output", str(tmp_path / "b")])
    assert no_clip.exit_code == 2 and "Traceback" not in no_clip.output
    assert "openai/clip-vit-large-patch14" in no_clip.output and "--clip-model" in no_clip.output
    assert "Hugging Face cache /" in no_clip.output  # where it is looked for
    assert not (tmp_path / "a" / "images").exists() and not (tmp_path / "b" / "images").exists()
    no_data = CliRunner().invoke(main, ["eval", "--tasks", "coco30k", "--data-dir", str(tmp_path), "--no-progress",
                                        *_options(fid_weights, tiny_clip), "--output", str(tmp_path / "c")])
    assert no_data.exit_code == 2 and MIRROR_ID in no_data.output and "Traceback" not in no_data.output


def test_align_reports_a_rounds_effect_on_clip_score_and_fid(coco_run, tiny_janus, coco_mirror, fid_weights,
                                                             tiny_clip, tmp_path):
    def scored(model, output):
        return evaluate(EvalConfig(model=model, tasks=("coco30k",), output=output, data_dir=coco_mirror,
                                   limit=6, batch_size=4, fid_features=fid_weights, clip_model=str(tiny_clip),
                                   progress=False))

    # the first model's run resumes coco_run's (nothing left to compute); the final model is an untrained Janus
    (before_run, before), (after_run, after) = scored(None, coco_run), scored(str(tiny_janus), tmp_path)
    decision = compare(before, after)
    clip, fid = decision.tasks["coco30k"], decision.tasks["coco30k/fid"]
    assert clip.delta == pytest.approx((after_run["headlines"]["coco30k"]["value"]
                                        - before_run["headlines"]["coco30k"]["value"]) / 100)
    assert clip.ci[0] <= clip.delta <= clip.ci[1]
    assert fid.delta == pytest.approx(after_run["results"]["coco30k"]["fid"] - before_run["results"]["coco30k"]["fid"])
    assert fid.delta > 10  # an untrained Janus draws far from the scenes the embedded model learned to draw
    assert all(np.isnan(fid.ci))  # FID has no interval: reported, never gating
    table = deltas_frame(json.loads(json.dumps(decision.as_dict(), default=str).replace("NaN", "null")))
    assert list(table[""]) == ["coco30k", "coco30k/fid"]


@pytest.mark.slow
def test_two_processes_score_like_one(coco_mirror, fid_weights, tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_BENCH_DATA_DIR", str(coco_mirror))
    folder = _real_images_folder(coco_mirror, tmp_path / "images", rotated=range(0, 8, 3))  # FID above 0
    args = ["-m", "hermes_bench", "score", "coco30k", str(folder), "--device", "cpu", *_options(fid_weights, tiny_clip)]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache-one"))
    one = CliRunner().invoke(main, [*args[2:], "--batch-size", "2", "--output", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    # two: 2 batches each, real statistics computed in shares; two-cached: the real statistics from the cache (on
    # process 0 alone), and one batch of 8, so process 1 has none of its own
    for name, cache, batch in (("two", "cache-two", "2"), ("two-cached", "cache-one", "8")):
        monkeypatch.setenv(CACHE_ENV, str(tmp_path / cache))
        run_python([*args, "--batch-size", batch, "--output", str(tmp_path / name)], cwd=tmp_path, processes=2)
    results = {name: json.loads((tmp_path / name / "results.json").read_text())
               for name in ("one", "two", "two-cached")}
    one = results["one"]["results"]["coco30k"]
    assert one["fid"] > 0.01
    for name in ("two", "two-cached"):
        other = results[name]["results"]["coco30k"]
        assert other["images"] == one["images"] == 8
        assert other["fid"] == pytest.approx(one["fid"], rel=1e-6 if name == "two" else 1e-4)  # other batches
        assert other["clip_score"] == pytest.approx(one["clip_score"], abs=1e-4)
        ci = results[name]["headlines"]["coco30k"]["ci"]
        assert ci == pytest.approx(results["one"]["headlines"]["coco30k"]["ci"], abs=1e-4)
    assert _cached_stats(tmp_path / "cache-two")[0]["rows"] == 8
    shares = [len((tmp_path / "two" / "cache" / f"clip_score.coco30k.rank{r}.jsonl").read_text().splitlines())
              for r in (0, 1)]
    assert shares == [4, 4]  # each process scored its half; the metrics were synchronised


def test_real_statistics_follow_the_data_not_a_stale_cache(coco_mirror, fid_weights, tiny_clip, tmp_path,
                                                           monkeypatch):
    from hub_mirror import build_coco

    mirror = tmp_path / "mirror"
    shutil.copytree(coco_mirror, mirror)
    monkeypatch.setenv("HERMES_BENCH_DATA_DIR", str(mirror))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    folder = _real_images_folder(coco_mirror, tmp_path / "images")
    fids = []
    for run in ("before", "after"):
        result = CliRunner().invoke(main, ["score", "coco30k", str(folder), "--output", str(tmp_path / run),
                                           *_options(fid_weights, tiny_clip)])
        assert result.exit_code == 0, result.output
        fids.append(json.loads((tmp_path / run / "results.json").read_text())["results"]["coco30k"]["fid"])
        build_coco(mirror, seed=12)  # the mirror's images change in place, under the same path
    assert abs(fids[0]) < 1e-3 < fids[1]  # the first real set is the images scored; the second is not
    assert len(_cached_stats(tmp_path / "cache")) == 2
