"""Two processes (torchrun, gloo on CPU) give the same results as one: the multi-GPU code path, at CPU size."""

import json
import os
import subprocess
import sys


def test_two_processes_match_one(tiny_janus, tmp_path):
    args = ["eval", "--model", str(tiny_janus), "--device", "cpu", "--limit", "8", "--batch-size", "8",
            "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "hermes_bench", *args, "--output", str(tmp_path / "one")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                            "-m", "hermes_bench", *args, "--output", str(tmp_path / "two")],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert multi.returncode == 0, multi.stderr[-2000:]
    assert multi.stdout.count("results:") == 1  # only the main process reports
    caches = sorted(p.name for p in (tmp_path / "two" / "cache").iterdir())
    assert "understanding.rank1.jsonl" in caches and "generation.shapes_geneval.rank1.jsonl" in caches
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    for key in ("results", "summary", "headlines"):
        assert one[key] == two[key]
