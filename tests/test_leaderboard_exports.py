"""Leaderboard exports are correct documents: the precision we print, escaped strings, n/a for undefined."""

import csv
import io
import re
from html.parser import HTMLParser

import pytest

from hermes_bench.report.leaderboard import render, table

NAME = "tiny <script>alert(1)</script> & co_1"


def _run(f1=0.8, mme=1.0):
    return {"model": {"name": NAME},
            "headlines": {
                "pope_full": {"kind": "understanding", "metric": "f1", "value": f1, "max": 1.0,
                              "ci": [0.7, 0.9] if f1 is not None else [None, None],
                              "details": {"pope_random": 1.0, "pope_popular": None}},
                "mme": {"kind": "understanding", "metric": "mme_perception_score", "value": 1200.0, "max": 2000,
                        "ci": [1100.0, 1300.0], "details": {"mme_cognition_score": 250.0}},
                "geneval": {"kind": "generation", "metric": "overall", "value": mme, "max": 1.0, "ci": [1.0, 1.0],
                            "details": {"position": 0.5}}},
            "summary": {"U": {"value": 0.7, "ci": [0.6, 0.8]}, "G": {"value": 1.0, "ci": [1.0, 1.0]},
                        "gap": {"value": -0.3, "ci": [-0.4, -0.2]}}}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.decl = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def handle_decl(self, decl):
        self.decl.append(decl)


@pytest.mark.parametrize("fmt", ["md", "csv", "latex", "html"])
@pytest.mark.parametrize("details", [False, True])
def test_every_export_ends_with_a_newline(fmt, details):
    assert render([_run()], fmt, details=details, reference=True).endswith("\n")


def test_markdown_and_latex_keep_the_precision_we_print():
    for fmt in ("md", "latex"):
        text = render([_run()], fmt, details=True, reference=True)
        assert "0.800 [0.700, 0.900]" in text and "1200.0 [1100.0, 1300.0]" in text, text
        cells = {c.strip() for line in text.splitlines() for c in re.split(r"[|&]", line.rstrip("\\"))}
        assert {"1.000", "250.0", "0.800", "0.90", "1232.9", "67.48"} <= cells, fmt  # no cell cut to 1 or 0.8


def test_an_undefined_metric_is_n_a_not_zero():
    text = render([_run(f1=float("nan"))], "md")
    assert "| n/a " in text
    rows = list(csv.DictReader(io.StringIO(render([_run(f1=None)], "csv"))))
    assert rows[0]["pope_full"] == "" and rows[0]["mme"] == "1200.0"
    assert "n/a" in render([_run()], "md", details=True)  # pope_popular's F1 was undefined


def test_html_is_a_whole_page_with_every_string_escaped():
    page = render([_run()], "html", reference=True)
    assert page.startswith("<!DOCTYPE html>") and "<script>" not in page
    parser = _Page()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert parser.decl == ["DOCTYPE html"] and {"html", "head", "title", "body", "table"} <= set(tags)
    assert any(t == "meta" and a.get("charset") == "utf-8" for t, a in parser.tags)
    assert NAME in "".join(parser.text)  # escaped in the file, the same text on the page


def test_latex_escapes_names_and_writes_delta_as_a_command():
    text = table(__import__("pandas").DataFrame([{"model": NAME, "Δgap": "-0.050"}]), "latex")
    assert text.startswith("% needs \\usepackage{booktabs}")
    assert "Δ" not in text and "$\\Delta$gap" in text
    assert "co\\_1" in text and "\\&" in text
    body = [line for line in text.splitlines() if line.endswith("\\\\")]
    assert body and all(line.count("&") - line.count("\\&") == 1 for line in body)  # two columns a row
    assert re.search(r"\\begin\{tabular\}.*\\end\{tabular\}", text, re.S)


def test_details_read_down_one_row_per_task_and_metric():
    text = render([_run()], "md", details=True)
    header, _, *rows = text.splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == ["model", "task", "metric", "value"]
    cells = {tuple(c.strip() for c in row.strip("|").split("|")[1:]) for row in rows}
    assert ("pope_full", "pope_random", "1.000") in cells and ("mme", "mme_cognition_score", "250.0") in cells
    assert ("gap", "gap", "-0.300 [-0.400, -0.200]") in cells
    numeric = list(csv.DictReader(io.StringIO(render([_run()], "csv", details=True))))
    assert numeric[0] == {"model": NAME, "task": "pope_full", "metric": "f1", "value": "0.8", "ci_low": "0.7",
                          "ci_high": "0.9"}


def test_reference_rows_carry_the_papers_tables_with_citations():
    rows = list(csv.DictReader(io.StringIO(render([], "csv", details=True, reference=True))))
    by_model = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[(row["task"], row["metric"])] = (float(row["value"]), row["source"])
    hermesflow = by_model["HermesFlow 1.3B (reported)"]
    assert hermesflow["geneval", "two_object"] == (0.84, "Yang et al., HermesFlow, arXiv:2502.12148 (2025), Tables 1-2")
    assert hermesflow["dpg", "(headline)"][0] == 70.22
    assert by_model["Show-o 1.3B (reported, gap table)"]["homologous_gap", "(headline)"][0] == 0.087
    assert by_model["Show-o 1.3B + Pair-DPO round 2 (reported, ablation)"]["mme", "(headline)"][0] == 1248.3
    assert by_model["Janus-Pro-7B (reported)"]["geneval", "position"][0] == 0.79
    assert "Emu3" in "".join(by_model) and all(source for m in by_model.values() for _, source in m.values())
