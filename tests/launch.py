"""Python in fresh processes, as users run the installed package: alone, or N under torchrun (gloo on CPU)."""

import os
import subprocess
import sys


def run_python(args: list[str], cwd, processes: int = 1) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)] if processes > 1 else []
    done = subprocess.run([sys.executable, *launcher, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done
