"""Bad input, table-driven: every case ends with exactly one `error:` line, exit code 2, no traceback, and nothing
written into a fresh output folder. The files are built once; almost no case gets as far as a model."""

import json
import shutil

import pytest
from click.testing import CliRunner
from hub_mirror import POPE_FEATURES, build_mme, build_pope, pope_rows, write_repo
from PIL import Image

from hermes_bench.cli import main
from hermes_bench.registry import BUILTIN_TASKS

POPE_TEMPLATE = BUILTIN_TASKS / "pope" / "_pope_template.yaml"


def _task(folder, name, body):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(body)


def _model_variant(source, target, change):
    shutil.copytree(source, target)
    change(target)


@pytest.fixture(scope="module")
def w(tmp_path_factory, tiny_janus):
    """A folder of broken things, one per case."""
    w = tmp_path_factory.mktemp("bad")
    (w / "a_file").write_text("not a folder")
    (w / "empty_dir").mkdir()
    # model folders
    def auto_map(d):
        config = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoConfig": "evil.Config"}}))
    _model_variant(tiny_janus, w / "auto_map_model", auto_map)
    weights = next(tiny_janus.glob("*.safetensors")).name
    _model_variant(tiny_janus, w / "truncated", lambda d: (d / weights).write_bytes((d / weights).read_bytes()[:999]))
    _model_variant(tiny_janus, w / "corrupt", lambda d: (d / weights).write_bytes(b"\0garbage" * 500))
    _model_variant(tiny_janus, w / "no_tokenizer", lambda d: [f.unlink() for f in d.glob("tokenizer*")])
    def mismatch(d):
        config = json.loads((d / "config.json").read_text())
        config["text_config"]["hidden_size"] *= 2
        (d / "config.json").write_text(json.dumps(config))
    _model_variant(tiny_janus, w / "mismatched", mismatch)
    _model_variant(tiny_janus, w / "bert_type", lambda d: (d / "config.json").write_text('{"model_type": "bert"}'))
    # task folders
    shapes = BUILTIN_TASKS / "shapes" / "shapes_pope_random.yaml"
    _task(w / "t_headline", "bad_headline", f"include: {shapes}\ntask: bad_headline\n"
          "metadata: {version: 1, headline: f1, headline_max: abc}\n")
    _task(w / "t_function", "bad_function", f"include: {shapes}\ntask: bad_function\n"
          "custom_dataset: !function no_such_module.load\nmetadata: {version: 1, headline: f1}\n")
    _task(w / "t_split", "bad_split", f"include: {POPE_TEMPLATE}\ntask: bad_split\n"
          "dataset_kwargs: {path: lmms-lab/POPE, name: Full, split: nope, fields: [question]}\n"
          "test_split: nope\nmetadata: {version: 1, headline: f1}\n")
    geneval_task = ("task: {name}\nkind: generation\nbenchmark: {benchmark}\n"
                    "prompts: {{source: shapes, n_per_tag: 1, seed: 1}}\nimages_per_prompt: {n}\ndetector: shapes\n"
                    "metadata: {{version: 1, headline: overall}}\n")
    _task(w / "t_images0", "bad_images0", geneval_task.format(name="bad_images0", benchmark="geneval", n=0))
    _task(w / "t_benchmark", "bad_benchmark", geneval_task.format(name="bad_benchmark", benchmark="nope", n=1))
    _task(w / "t_malformed", "malformed", "task: [unclosed\n")
    _task(w / "t_no_headline", "no_headline", f"include: {shapes}\ntask: no_headline\nmetadata: {{version: 1}}\n")
    # dataset mirrors
    rows = pope_rows("random", 2)
    write_repo(w / "pope_int", "lmms-lab/POPE", {("Full", "random"): [{**r, "answer": str(i)} for i, r in
                                                                      enumerate(rows)]}, POPE_FEATURES)
    mme_root = w / "mme_odd"
    build_mme(mme_root, ("existence",))
    build_pope(w / "pope_ok", n=2)
    build_mme(w / "pope_ok", ("existence",))
    short = w / "geneval_short" / "djghosh13/geneval/prompts/evaluation_metadata.jsonl"
    short.parent.mkdir(parents=True)
    short.write_text('{"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a dog"}\n')
    dpg_root = w / "dpg_no_csv" / "TencentQQGYLab/ELLA/dpg_bench/prompts"
    dpg_root.mkdir(parents=True)
    (dpg_root / "p1.txt").write_text("a cat")
    # GenEval folders to score
    for name, record in [("geneval_include5", {"tag": "single_object", "prompt": "x", "include": [5]}),
                         ("geneval_position", {"tag": "position", "prompt": "x", "include": [
                             {"class": "dog", "count": 1, "position": ["left of", 3]}]}),
                         ("geneval_no_tag", {"prompt": "x", "include": []}),
                         ("geneval_ok", {"tag": "single_object", "prompt": "a dog",
                                         "include": [{"class": "dog", "count": 1}]})]:
        folder = w / name / "00000"
        (folder / "samples").mkdir(parents=True)
        (folder / "metadata.jsonl").write_text(json.dumps(record))
        Image.new("RGB", (32, 32)).save(folder / "samples" / "0000.png")
    (w / "geneval_bad_json" / "00000").mkdir(parents=True)
    (w / "geneval_bad_json" / "00000" / "metadata.jsonl").write_text("{not json")
    # results files
    good = {"model": {"name": "m"}, "summary": {}, "results": {}, "headlines": {}}
    (w / "no_model.json").write_text(json.dumps({k: v for k, v in good.items() if k != "model"}))
    (w / "wrong_types.json").write_text(json.dumps({**good, "headlines": {"t": {"value": "high", "max": 1,
                                                                               "ci": [0, 1]}}}))
    (w / "binary.json").write_bytes(bytes(range(256)))
    (w / "list.json").write_text("[]")
    (w / "good.json").write_text(json.dumps(good))
    # align data
    Image.new("RGB", (8, 8)).save(w / "img.png")
    (w / "latin1.json").write_bytes('[{"image": "img.png", "caption": "caf\xe9"}]'.encode("latin-1"))
    (w / "choices5.json").write_text(json.dumps([{"image": "img.png", "caption": "a cat", "questions": [
        {"question": "q?", "choices": 5, "answer": "a"}]}]))
    (w / "sub").mkdir()
    (w / "sub" / "outside.json").write_text(json.dumps([{"image": "../img.png", "caption": "a cat"}]))  # exists
    (w / "not_json.json").write_text("[{")
    (w / "ok.json").write_text(json.dumps([{"image": "img.png", "caption": "a cat"}]))
    (w / "bad_questions.jsonl").write_text("{nope\n")
    return w


EVAL = ["eval", "--no-progress", "--output", "{out}"]
ALIGN = ["align", "--output", "{out}"]
CASES = {
    # eval: tasks and task YAMLs
    "unknown task": ([*EVAL, "--tasks", "nosuchtask"], "nosuchtask"),
    "unknown task among known": ([*EVAL, "--tasks", "shapes_pope,nosuch"], "nosuch"),
    "missing include path": ([*EVAL, "--include-path", "{w}/nodir"], "nodir"),
    "headline_max not a number": ([*EVAL, "--include-path", "{w}/t_headline", "--tasks", "bad_headline"],
                                  "headline_max"),
    "!function of a missing module": ([*EVAL, "--include-path", "{w}/t_function", "--tasks", "bad_function"],
                                      "no_such_module"),
    "unknown split": ([*EVAL, "--include-path", "{w}/t_split", "--tasks", "bad_split", "--data-dir", "{w}/pope_ok"],
                      "nope"),
    "images_per_prompt 0": ([*EVAL, "--include-path", "{w}/t_images0", "--tasks", "bad_images0"],
                            "images_per_prompt"),
    "unknown generation benchmark": ([*EVAL, "--include-path", "{w}/t_benchmark", "--tasks", "bad_benchmark"],
                                     "benchmark"),
    "malformed YAML": ([*EVAL, "--include-path", "{w}/t_malformed"], "malformed"),
    "no headline": ([*EVAL, "--include-path", "{w}/t_no_headline", "--tasks", "no_headline"], "headline"),
    # eval: models
    "missing model folder": ([*EVAL, "--model", "{w}/nofolder"], "does not exist"),
    "model folder without config": ([*EVAL, "--model", "{w}/empty_dir"], "config.json"),
    "model with auto_map": ([*EVAL, "--model", "{w}/auto_map_model"], "auto_map"),
    "truncated weights": ([*EVAL, "--model", "{w}/truncated"], "cannot be read"),
    "corrupt weights": ([*EVAL, "--model", "{w}/corrupt"], "cannot be read"),
    "no tokenizer": ([*EVAL, "--model", "{w}/no_tokenizer"], "cannot load model"),
    "weights that do not fit the config": ([*EVAL, "--model", "{w}/mismatched"], "cannot load model"),
    "unsupported model type": ([*EVAL, "--model", "{w}/bert_type"], "bert"),
    # eval: option values
    "negative seed": ([*EVAL, "--seed", "-1"], "--seed"),
    "huge seed": ([*EVAL, "--seed", str(2**70)], "--seed"),
    "nan guidance": ([*EVAL, "--guidance-scale", "nan"], "--guidance-scale"),
    "inf guidance": ([*EVAL, "--guidance-scale", "inf"], "--guidance-scale"),
    "negative guidance": ([*EVAL, "--guidance-scale", "-1"], "--guidance-scale"),
    "meta device": ([*EVAL, "--device", "meta"], "meta"),
    "mps device": ([*EVAL, "--device", "mps"], "mps"),
    "unknown device": ([*EVAL, "--device", "tpu"], "tpu"),
    "missing GPU": ([*EVAL, "--device", "cuda:7"], "cuda:7"),
    "unknown dtype": ([*EVAL, "--dtype", "float8"], "float8"),
    "batch size 0": ([*EVAL, "--batch-size", "0"], "--batch-size"),
    "limit 0": ([*EVAL, "--limit", "0"], "--limit"),
    "limit not a number": ([*EVAL, "--limit", "abc"], "--limit"),
    "unknown eval option": ([*EVAL, "--bogus"], "--bogus"),
    # eval: data and judges, found before any work
    "DPG-Bench without its data": ([*EVAL, "--tasks", "shapes_pope_random,dpg", "--limit", "2"], "DPG-Bench"),
    "DPG-Bench without its CSV": ([*EVAL, "--tasks", "dpg", "--data-dir", "{w}/dpg_no_csv", "--judge",
                                   "{w}/auto_map_model"], "dpg_bench.csv"),
    "missing judge": ([*EVAL, "--tasks", "shapes_gap", "--judge", "{w}/MISSING"], "MISSING"),
    "judge with auto_map": ([*EVAL, "--tasks", "shapes_gap", "--judge", "{w}/auto_map_model"], "auto_map"),
    "missing data dir": ([*EVAL, "--data-dir", "{w}/nofolder"], "--data-dir"),
    "POPE answers that are not yes or no": ([*EVAL, "--tasks", "pope_random", "--data-dir", "{w}/pope_int"],
                                            "neither yes nor no"),
    "MME mirror missing": ([*EVAL, "--tasks", "mme", "--data-dir", "{w}/pope_int"], "lmms-lab/MME"),
    "short GenEval prompt file": ([*EVAL, "--tasks", "geneval", "--data-dir", "{w}/geneval_short"], "553"),
    "output is a file": (["eval", "--output", "{w}/a_file/run"], "not a folder"),
    # score
    "score a missing folder": (["score", "geneval", "{w}/nofolder"], "nofolder"),
    "score an empty folder": (["score", "geneval", "{w}/empty_dir", "--output", "{out}"], "no prompt folders"),
    "score include [5]": (["score", "geneval", "{w}/geneval_include5", "--output", "{out}"], "clause"),
    "score position of no earlier clause": (["score", "geneval", "{w}/geneval_position", "--output", "{out}"],
                                            "position"),
    "score a record without tag": (["score", "geneval", "{w}/geneval_no_tag", "--output", "{out}"], "tag"),
    "score metadata that is not JSON": (["score", "geneval", "{w}/geneval_bad_json", "--output", "{out}"],
                                        "not JSON"),
    "score DPG without prompts": (["score", "dpg", "{w}/empty_dir", "--output", "{out}"], "--prompts"),
    "score an unknown benchmark": (["score", "nosuch", "{w}/empty_dir"], "nosuch"),
    "score with a missing detector": (["score", "geneval", "{w}/geneval_ok", "--detector-model",
                                       "{w}/nofolder", "--output", "{out}"], "nofolder"),
    "score with a detector with auto_map": (["score", "geneval", "{w}/geneval_ok", "--clip-model",
                                             "{w}/auto_map_model", "--output", "{out}"], "auto_map"),
    "score on a meta device": (["score", "geneval", "{w}/empty_dir", "--device", "meta", "--output", "{out}"],
                               "meta"),
    # leaderboard
    "leaderboard of a missing file": (["leaderboard", "{w}/nofile.json"], "nofile.json"),
    "leaderboard without model": (["leaderboard", "{w}/no_model.json"], "model"),
    "leaderboard with wrong value types": (["leaderboard", "{w}/wrong_types.json"], "headline t"),
    "leaderboard of binary bytes": (["leaderboard", "{w}/binary.json"], "not valid JSON"),
    "leaderboard of a list": (["leaderboard", "{w}/list.json"], "not a hermes-bench results file"),
    "leaderboard of a folder without results": (["leaderboard", "{w}/empty_dir"], "no results"),
    "leaderboard in an unknown format": (["leaderboard", "{w}/good.json", "--format", "pdf"], "pdf"),
    "leaderboard of nothing": (["leaderboard"], "RESULTS"),
    "leaderboard written under a file": (["leaderboard", "{w}/good.json", "--output", "{w}/a_file/board.md"],
                                         "a_file"),
    # align
    "align on a missing file": ([*ALIGN, "--data", "{w}/nofile.json"], "does not exist"),
    "align on Latin-1 data": ([*ALIGN, "--data", "{w}/latin1.json"], "UTF-8"),
    "align on data that is not JSON": ([*ALIGN, "--data", "{w}/not_json.json"], "not valid JSON"),
    "align with choices that are not a list": ([*ALIGN, "--data", "{w}/choices5.json"], "choices"),
    "align on an image outside its folder": ([*ALIGN, "--data", "{w}/sub/outside.json"], "outside"),
    "align reporting an unknown task": ([*ALIGN, "--report-tasks", "nosuchtask"], "nosuchtask"),
    "align gated by an unknown task": ([*ALIGN, "--gate-tasks", "nosuch"], "nosuch"),
    "align a missing model": ([*ALIGN, "--model", "{w}/nofolder"], "does not exist"),
    "align a model with auto_map": ([*ALIGN, "--model", "{w}/auto_map_model"], "auto_map"),
    "align zero rounds": ([*ALIGN, "--rounds", "0"], "--rounds"),
    "align nan beta": ([*ALIGN, "--beta", "nan"], "--beta"),
    "align negative beta": ([*ALIGN, "--beta", "-1"], "--beta"),
    "align one coefficient": ([*ALIGN, "--coefficients", "1"], "two numbers"),
    "align negative seed": ([*ALIGN, "--seed", "-5"], "--seed"),
    "align with a missing questions file": ([*ALIGN, "--questions", "{w}/nofile.jsonl"], "nofile.jsonl"),
    "align with questions that are not JSON": ([*ALIGN, "--data", "{w}/ok.json", "--questions",
                                                "{w}/bad_questions.jsonl"], "not valid JSON"),
    "align with a caption scorer with auto_map": ([*ALIGN, "--caption-scorer", "{w}/auto_map_model"], "auto_map"),
    "align on a meta device": ([*ALIGN, "--device", "meta"], "meta"),
    "align in an unknown mode": ([*ALIGN, "--mode", "nope"], "nope"),
    "align into a file": (["align", "--output", "{w}/a_file/run"], "not a folder"),
    # world train, tasks, the command itself
    "world train without output": (["world", "train"], "--output"),
    "world train into a file": (["world", "train", "--output", "{w}/a_file/model"], "not a folder"),
    "world train on a meta device": (["world", "train", "--output", "{out}", "--device", "meta"], "meta"),
    "world train with guidance 0": (["world", "train", "--output", "{out}", "--guidance-scales", "0"],
                                    "--guidance-scales"),
    "tasks from a missing folder": (["tasks", "--include-path", "{w}/nofolder"], "nofolder"),
    "tasks from a malformed YAML": (["tasks", "--include-path", "{w}/t_malformed"], "malformed"),
    "unknown top-level option": (["--bogus"], "--bogus"),
    "unknown command": (["nosuchcommand"], "nosuchcommand"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clean_line_and_leaves_nothing(case, w, tmp_path):
    args, expected = CASES[case]
    out = tmp_path / "out"
    args = [a.replace("{w}", str(w)).replace("{out}", str(out)) for a in args]
    result = CliRunner().invoke(main, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, (case, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, result.output)
    assert "Traceback" not in result.output and expected in lines[0], (case, lines[0])
    assert not out.exists() or not any(out.rglob("*")), (case, sorted(out.rglob("*")))


def test_the_corpus_is_large():
    assert len(CASES) >= 60


def test_a_judge_with_corrupt_weights_stops_before_any_image_is_made(w, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--tasks", "shapes_gap", "--judge", str(w / "corrupt"), "--output",
                                       str(out), "--no-progress"])
    assert result.exit_code == 2 and "cannot be read" in result.output and not out.exists()
