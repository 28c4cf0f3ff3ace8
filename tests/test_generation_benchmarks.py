"""GenEval and DPG-Bench end to end on tiny real models built offline (Mask2Former, CLIP, a Janus judge),
with data in the benchmarks' exact schemas, through the real loading code; and scoring images made elsewhere."""

import base64
import io
import json
import shutil

import pytest
from click.testing import CliRunner
from hub_mirror import build_dpg, build_geneval
from PIL import Image

from hermes_bench.cli import main
from hermes_bench.detectors.tiny import build_tiny_clip, build_tiny_mask2former
from hermes_bench.scoring import dpg


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    root = tmp_path_factory.mktemp("detectors")
    return build_tiny_mask2former(root / "m2f"), build_tiny_clip(root / "clip")


@pytest.fixture(scope="module")
def gen_mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen-mirror")
    build_geneval(root)
    build_dpg(root)
    return root


@pytest.fixture(scope="module")
def gen_run(tiny_janus, detectors, gen_mirror, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen-run")
    m2f, clip = detectors
    result = CliRunner().invoke(main, [
        "eval", "--model", str(tiny_janus), "--tasks", "geneval,dpg", "--data-dir", str(gen_mirror),
        "--detector-model", str(m2f), "--clip-model", str(clip), "--judge", str(tiny_janus), "--limit", "6",
        "--output", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


def test_eval_generates_in_the_reference_layouts_and_scores(gen_run):
    run = json.loads((gen_run / "results.json").read_text())
    geneval = run["results"]["geneval"]
    assert set(geneval) >= {"single_object", "two_object", "counting", "colors", "position", "color_attr", "overall"}
    folders = sorted((gen_run / "images" / "geneval").iterdir())
    assert [f.name for f in folders] == [f"{i:05d}" for i in range(6)]
    assert len(list(folders[0].glob("samples/*.png"))) == 4
    grids = sorted((gen_run / "images" / "dpg").glob("*.png"))
    assert [g.stem for g in grids] == ["coco2", "partiprompts1"]
    assert Image.open(grids[0]).size == (64, 64)  # 2x2 tiles of 32x32
    dpg = run["results"]["dpg"]
    assert 0 <= dpg["dpg"] <= 100 and "L1/entity" in dpg and "L2/relation - spatial" in dpg
    for name in ("geneval", "dpg"):
        lo, hi = run["headlines"][name]["ci"]
        assert lo <= run["headlines"][name]["value"] <= hi
    records = [json.loads(line) for line in (gen_run / "samples_dpg.jsonl").open()]
    assert all(len(r["answers"]) == 4 for r in records)


def test_score_geneval_folder_made_elsewhere_matches_the_eval(gen_run, detectors, tmp_path):
    m2f, clip = detectors
    folder = tmp_path / "outside"
    shutil.copytree(gen_run / "images" / "geneval", folder)
    result = CliRunner().invoke(main, ["score", "geneval", str(folder), "--detector-model", str(m2f),
                                       "--clip-model", str(clip), "--no-progress"])
    assert result.exit_code == 0, result.output
    scored = json.loads((folder / "hermes-bench" / "results.json").read_text())
    evaluated = json.loads((gen_run / "results.json").read_text())
    assert scored["results"]["geneval"] == {k: v for k, v in evaluated["results"]["geneval"].items()
                                            if k != "guidance_scale"}
    assert scored["headlines"]["geneval"]["ci"] == evaluated["headlines"]["geneval"]["ci"]


def test_score_dpg_keeps_what_it_scored_when_an_image_is_wrong(gen_run, gen_mirror, tiny_janus, tmp_path):
    folder = tmp_path / "grids"
    shutil.copytree(gen_run / "images" / "dpg", folder)
    good = Image.open(folder / "partiprompts1.png").copy()
    Image.new("RGB", (64, 48)).save(folder / "partiprompts1.png")  # not a 2x2 grid of squares
    dpg_dir = gen_mirror / "TencentQQGYLab/ELLA/dpg_bench"
    args = ["score", "dpg", str(folder), "--prompts", str(dpg_dir / "prompts"), "--csv",
            str(dpg_dir / "dpg_bench.csv"), "--judge", str(tiny_janus), "--no-progress"]
    _assert_clean_error(CliRunner().invoke(main, args), "64x48", "2x2 grid")
    cache = folder / "hermes-bench" / "cache" / "scores.dpg.rank0.jsonl"
    assert len(cache.read_text().splitlines()) == 1  # coco2 was scored before the bad grid, and kept
    good.save(folder / "partiprompts1.png")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(cache.read_text().splitlines()) == 2  # only the fixed grid was asked about
    scored = json.loads((folder / "hermes-bench" / "results.json").read_text())
    evaluated = json.loads((gen_run / "results.json").read_text())
    assert scored["results"]["dpg"] == {k: v for k, v in evaluated["results"]["dpg"].items()
                                        if k != "guidance_scale"}


def test_score_dpg_with_an_api_judge(gen_run, gen_mirror, tmp_path, openai_server):
    folder = tmp_path / "grids"
    shutil.copytree(gen_run / "images" / "dpg", folder)
    dpg_dir = gen_mirror / "TencentQQGYLab/ELLA/dpg_bench"
    result = CliRunner().invoke(main, ["score", "dpg", str(folder), "--prompts", str(dpg_dir / "prompts"), "--csv",
                                       str(dpg_dir / "dpg_bench.csv"), "--judge", "openai:shapes-vlm",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (folder / "hermes-bench" / "samples_dpg.jsonl").read_text().splitlines()]
    assert len(openai_server.requests) == sum(4 * len(r["questions"]) for r in records) > 0
    tiles = {tile.tobytes() for r in records
             for tile in dpg.tiles(Image.open(folder / f"{r['item_id']}.png").convert("RGB"), r["item_id"])}
    for request in openai_server.requests:  # every tile of every grid, and nothing else, went to the judge
        url = request["messages"][-1]["content"][0]["image_url"]["url"]
        sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
        assert sent.tobytes() in tiles
    assert all(set(answers) <= {"Yes", "No"} for r in records for answers in r["answers"])


def _assert_clean_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in result.output, result.output
    for word in words:
        assert word in line, line


def test_missing_metadata_field(gen_run, detectors, tmp_path):
    m2f, clip = detectors
    folder = tmp_path / "outside"
    shutil.copytree(gen_run / "images" / "geneval", folder)
    (folder / "00003" / "metadata.jsonl").write_text(json.dumps({"tag": "colors", "prompt": "a red car"}))
    result = CliRunner().invoke(main, ["score", "geneval", str(folder), "--detector-model", str(m2f),
                                       "--clip-model", str(clip), "--no-progress"])
    _assert_clean_error(result, "00003", "include")


def test_prompt_folder_without_its_csv_rows(gen_mirror, tiny_janus, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(gen_mirror / "TencentQQGYLab", mirror / "TencentQQGYLab")
    (mirror / "TencentQQGYLab/ELLA/dpg_bench/prompts/extra9.txt").write_text("a lonely prompt")
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_janus), "--tasks", "dpg", "--data-dir",
                                       str(mirror), "--judge", str(tiny_janus), "--output", str(tmp_path / "o"),
                                       "--no-progress"])
    _assert_clean_error(result, "extra9.txt", "no rows")
    assert not (tmp_path / "o").exists()


def test_dpg_needs_a_judge(gen_mirror, tiny_janus, tmp_path):
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_janus), "--tasks", "dpg", "--data-dir",
                                       str(gen_mirror), "--output", str(tmp_path / "o"), "--no-progress"])
    _assert_clean_error(result, "--judge")


def test_mask2former_clip_detections_and_colours(detectors):
    import numpy as np

    from hermes_bench.detectors.mask2former import COLORS, GENEVAL_CLASSES, Mask2FormerClip
    from hermes_bench.scoring.geneval import Detection

    m2f, clip = detectors
    detector = Mask2FormerClip(str(m2f), str(clip))
    image = Image.new("RGB", (40, 30), "red")
    found = detector.detect([image, image.copy()])
    assert len(found) == 2 and found[0]
    for d in found[0]:
        ys, xs = np.nonzero(d.mask)
        assert d.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) and d.label in GENEVAL_CLASSES
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:15, 10:30] = True
    colors = detector.colors(image, [Detection("car", 0.9, (10, 5, 30, 15), mask=mask),
                                     Detection("car", 0.8, (0, 0, 40, 30))], "car")
    assert len(colors) == 2 and set(colors) <= set(COLORS)
    assert colors == detector.colors(image, [Detection("car", 0.9, (10, 5, 30, 15), mask=mask),
                                             Detection("car", 0.8, (0, 0, 40, 30))], "car")


def test_html_leaderboard_shows_sample_grids_per_tag(gen_run):
    result = CliRunner().invoke(main, ["leaderboard", str(gen_run), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert "<table" in result.output and "<h4>single_object</h4>" in result.output
    assert result.output.count("data:image/png;base64,") >= 6 + 2  # GenEval samples and DPG grids


def test_geneval_prompts_ship_with_the_package(monkeypatch):
    """The real evaluation_metadata.jsonl, read with no network and no --data-dir: 553 prompts, GenEval's tags."""
    from collections import Counter

    from hermes_bench.runners import geneval

    monkeypatch.delenv("HERMES_BENCH_DATA_DIR", raising=False)
    records = geneval.reference_metadata()
    assert Counter(r["tag"] for r in records) == {"single_object": 80, "two_object": 99, "counting": 80,
                                                  "colors": 94, "position": 100, "color_attr": 100}
    assert records[0] == {"tag": "single_object", "include": [{"class": "bench", "count": 1}],
                          "prompt": "a photo of a bench"}
    assert (geneval.SHIPPED.parent / "LICENSE").read_text().startswith("MIT License")


def test_a_changed_shipped_prompt_file_is_refused(tmp_path, monkeypatch):
    from hermes_bench.errors import HermesBenchError
    from hermes_bench.runners import geneval

    changed = tmp_path / "evaluation_metadata.jsonl"
    changed.write_text(geneval.SHIPPED.read_text().replace("bench", "bus", 1))
    monkeypatch.setattr(geneval, "SHIPPED", changed)
    monkeypatch.delenv("HERMES_BENCH_DATA_DIR", raising=False)
    with pytest.raises(HermesBenchError, match="sha256"):
        geneval.reference_metadata()


def test_a_short_metadata_file_is_not_taken_for_the_reference(tmp_path, monkeypatch):
    from hub_mirror import geneval_records

    from hermes_bench.errors import HermesBenchError
    from hermes_bench.runners import geneval

    path = tmp_path / "djghosh13/geneval/prompts/evaluation_metadata.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in geneval_records()[:10]))
    monkeypatch.setenv("HERMES_BENCH_DATA_DIR", str(tmp_path))
    with pytest.raises(HermesBenchError, match="expected 553 prompts"):
        geneval.reference_metadata()
