"""The README's Quickstart commands run as written on a machine that has only Python, and CI runs the same."""

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quickstart() -> list[str]:
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_test_command_installs_what_it_runs():
    test_command = next(line for line in _quickstart() if "tox" in line)
    steps = [step.strip() for step in test_command.split("&&")]
    assert steps[0].startswith("python3 -m pip install tox"), "tox must be installed by the command itself"
    # run through the interpreter, so a fresh user install whose scripts folder is not on PATH still works
    assert all(step.startswith("python3 ") for step in steps), test_command


def test_ci_runs_the_readmes_test_command_exactly():
    test_command = next(line for line in _quickstart() if "tox" in line)
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_the_install_command_pins_the_cpu_torch_first():
    install = _quickstart()[0]
    assert install.startswith("pip install torch==2.13.0 && ") or install.startswith(
        "python3 -m pip install torch==2.13.0 && "), install
    assert shutil.which("python3") is not None
