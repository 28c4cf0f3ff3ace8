"""The house: no import cycle between folders, every option explained, a CLI that does not load torch, one tree at
a time, and the extension points the README's Extending section describes, used exactly as it says."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image

from hermes_bench import check_same_tree, judges
from hermes_bench.cli import main
from hermes_bench.registry import BUILTIN_TASKS

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {"hermes_bench": ROOT / "hermes_bench", "hermes_bench.align": ROOT / "align",
         "hermes_bench.tasks": ROOT / "tasks"}


def _room(module: str) -> str | None:
    """hermes_bench.<room>.<...> -> <room> (a folder, or a module at the package root)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "hermes_bench" and len(parts) > 1 else None


def import_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for prefix, folder in ROOMS.items():
        for path in folder.rglob("*.py"):
            module = ".".join([prefix, *path.relative_to(folder).with_suffix("").parts]).removesuffix(".__init__")
            source = _room(module)
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module, *(f"{node.module}.{a.name}" for a in node.names)] \
                    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
                for target in filter(None, map(_room, names)):
                    if source and target != source:
                        edges.setdefault(source, set()).add(target)
    return edges


def test_no_import_cycle_between_folders():
    edges = import_graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    cycles = sorted(f"{a} -> {b}" for a in edges for b in edges[a] if reaches(b, a, set()))
    assert cycles == []
    assert "embedded" not in edges.get("models", set()) | edges.get("world", set())  # the top layer stays on top


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


def test_every_option_has_help_and_every_summary_is_whole():
    for name, command in _commands(main):
        assert not command.get_short_help_str(120).endswith("..."), name
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"{name} {param.opts[0]}"


def test_the_cli_loads_without_torch():
    found = subprocess.run([sys.executable, "-c", "import sys, hermes_bench.cli; print('torch' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"


def test_a_checkout_and_an_installed_copy_cannot_be_mixed(tmp_path):
    installed, checkout = tmp_path / "site-packages" / "hermes_bench", tmp_path / "checkout"
    check_same_tree(str(installed / "align" / "__init__.py"), str(installed / "__init__.py"))  # installed
    check_same_tree(str(checkout / "align" / "__init__.py"), str(checkout / "hermes_bench" / "__init__.py"))
    with pytest.raises(ImportError, match="a checkout and an installed copy are mixed"):
        check_same_tree(str(checkout / "align" / "__init__.py"), str(installed / "__init__.py"))


# Extending, as the README says: a task YAML in an --include-path folder; a judge prefix in judges.JUDGE_PREFIXES


class SaysYes:
    """A toy judge: answers yes to everything (the Answerer protocol: name, fingerprint, answer)."""

    fingerprint = "says-yes-v1"

    def __init__(self, name: str) -> None:
        self.name = name

    def answer(self, prompts: list[str], images: list[list[Image.Image]], max_new_tokens: int = 16) -> list[str]:
        return ["Yes"] * len(prompts)


def test_a_toy_task_and_a_toy_judge_registered_as_the_readme_says(tmp_path, monkeypatch):
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    pope = (BUILTIN_TASKS / "shapes" / "shapes_pope_random.yaml").read_text()
    (folder / "toy_pope.yaml").write_text(
        pope.replace("task: shapes_pope_random", "task: toy_pope")
        .replace("../pope/_pope_template.yaml", str(BUILTIN_TASKS / "pope" / "_pope_template.yaml"))
        .replace("!function shapes_utils.", "!function hermes_bench.tasks.shapes.shapes_utils."))
    monkeypatch.setitem(judges.JUDGE_PREFIXES, "yes:", SaysYes)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["eval", "--include-path", str(folder), "--tasks", "toy_pope,shapes_gap",
                                       "--judge", "yes:always", "--limit", "3", "--no-progress", "--output", str(out)])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "results.json").read_text())
    assert set(run["headlines"]) == {"toy_pope", "shapes_gap"}
    judged = [json.loads(line) for line in (out / "samples_shapes_gap.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in judged} == {"yes:always"} and all(r["generation_answer"] for r in judged)


@pytest.mark.parametrize("command", [["eval", "--tasks", "shapes_gap"], ["align", "--rounds", "1", "--records", "2"]])
def test_every_command_checks_its_judge_before_any_work(command, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*command, "--judge", "nobody/no-such-judge", "--no-progress", "--output",
                                       str(out)])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot load judge nobody/no-such-judge") and result.output.count("\n") == 1
    assert not (out / "images").exists() and not (out / "round-0").exists()
