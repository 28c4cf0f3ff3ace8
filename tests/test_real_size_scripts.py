"""The real-size scripts run: the GPU benchmark at tiny size on CPU (every part), the memory plan's table."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.slow
def test_the_gpu_benchmark_runs_every_part_at_tiny_size():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_bench.py"), "--size", "tiny", "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {(r["part"], r.get("batch"), r.get("mode"), r.get("setup")) for r in rows} == {
        ("understanding", 1, None, None), ("understanding", 2, None, None), ("generation", 1, None, None),
        ("generation", 2, None, None), ("decode step", 2, "eager", None), ("decode step", 2, "torch.compile", None),
        ("Pair-DPO step", None, None, "full"), ("Pair-DPO step", None, None, "LoRA r16")}
    assert not [r for r in rows if "error" in r]
    lora, full = (next(r for r in rows if r.get("setup") == s) for s in ("LoRA r16", "full"))
    assert 0 < lora["trained_parameters"] < full["trained_parameters"]


def test_the_memory_plan_covers_every_model_and_setup():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "memory_plan.py"), "--no-measure"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and " B |" in line]
    assert len(rows) == 12  # 4 models x (DDP, FSDP, LoRA)
    for row in rows:
        weights, gradients, optimizer, activations, total = (float(x) for x in row[3:8])
        assert total == pytest.approx(weights + gradients + optimizer + activations, abs=0.2)
        assert float(row[9]) <= total  # checkpointing never costs memory
