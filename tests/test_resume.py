"""Kill an eval midway, rerun it into the same folder: identical results, no finished sample recomputed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # subprocesses, training or several processes

ARGS = ["--tasks", "shapes_pope_random,shapes_geneval", "--limit", "30", "--batch-size", "4", "--no-progress"]


def _eval(model, out, env):
    # cwd outside the checkout, so `-m` imports the installed package rather than the source folder
    return subprocess.Popen([sys.executable, "-m", "hermes_bench", "eval", "--model", str(model),
                             "--output", str(out), *ARGS], env=env, cwd=out.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc):
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_killed_run_resumes_to_identical_results(tiny_janus, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = tmp_path / "uninterrupted"
    _finish(_eval(tiny_janus, reference, env))

    out = tmp_path / "killed"
    gen_cache = out / "cache" / "generation.shapes_geneval.rank0.jsonl"
    proc = _eval(tiny_janus, out, env)
    deadline = time.time() + 300
    while len(_lines(gen_cache)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists(), "the run finished before it could be killed"
    done_before = len(_lines(gen_cache))
    answers_before = len(_lines(out / "cache" / "understanding.rank0.jsonl"))
    assert 3 <= done_before < 30 and answers_before == 30
    old_images = {p: p.stat().st_mtime_ns for p in (out / "images").rglob("*.png")}

    _finish(_eval(tiny_janus, out, env))
    resumed = json.loads((out / "results.json").read_text())
    expected = json.loads((reference / "results.json").read_text())
    for key in ("results", "summary", "headlines"):
        assert resumed[key] == expected[key]
    computed = resumed["provenance"]["samples_computed"]
    assert computed["understanding_computed"] == 0
    assert computed["shapes_geneval_prompts_computed"] == 30 - done_before
    assert all(p.stat().st_mtime_ns == t for p, t in old_images.items())
    ours, theirs = sorted((out / "images").rglob("*.png")), sorted((reference / "images").rglob("*.png"))
    assert [p.read_bytes() for p in ours] == [p.read_bytes() for p in theirs]
