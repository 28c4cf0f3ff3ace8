"""Leaderboards from results files: one row per run; task headlines, U, G and gap, each with its 95% CI.

Cells keep the precision we print (0.800 stays 0.800); an undefined metric shows as "n/a" (empty in CSV). Every
export is a whole document that ends with a newline: the HTML a page with every string escaped, the LaTeX a
booktabs table (it needs \\usepackage{booktabs}).
"""

from __future__ import annotations

import html
import json
import math
from importlib.resources import files
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from hermes_bench.report.gallery import gallery

FORMATS = ("md", "csv", "latex", "html")
UNDEFINED = "n/a"


def _defined(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _cell(value: float | None, ci: list | None, digits: int) -> str:
    if not _defined(value):
        return UNDEFINED
    if ci is None or not all(_defined(x) for x in ci):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def reference_rows() -> list[dict]:
    """Published numbers (results/reference/paper_rows.json), each with its citation. Scores are strings, as
    printed in the paper, so that their precision survives; a row's `columns` are the breakdown scores it shows
    beside the headlines (as a task's metadata.columns)."""
    return json.loads(files("hermes_bench.reference").joinpath("paper_rows.json").read_text())


def _run_columns(run: dict, details: bool) -> list[tuple[str, str, str, float | None, list | None, int]]:
    """(column, task, metric, value, ci, digits) for each headline (and the columns its task's metadata names, or
    with details its whole breakdown), then U, G and gap."""
    columns = []
    for name, h in run["headlines"].items():
        meta = run.get("configs", {}).get(name, {}).get("metadata", {})
        digits = meta.get("digits", 3 if h["max"] <= 1 else 1)
        columns.append((name, name, h["metric"], h["value"], h["ci"], digits))
        declared = meta.get("columns", [])
        shown = h.get("details", {}) if details else {k: h["details"].get(k) for k in declared}
        columns += [(f"{name}/{k}", name, k, v, None, digits) for k, v in shown.items()]
    columns += [(side, side, side, run["summary"][side]["value"], run["summary"][side]["ci"], 3)
                for side in ("U", "G", "gap") if side in run["summary"]]
    return columns


def frame(runs: list[dict], numeric: bool = False, reference: bool = False) -> pd.DataFrame:
    """Rows = runs, columns = headlines, U, G and gap. numeric=True gives value, ci_low and ci_high columns
    instead of formatted cells; reference=True adds the published rows, with a source column citing them."""
    rows = []
    for run in runs:
        row: dict = {"model": run["model"]["name"]}
        for column, _, _, value, ci, digits in _run_columns(run, details=False):
            if numeric:
                row[column] = value
                if ci is not None:
                    row.update({f"{column}_ci_low": ci[0], f"{column}_ci_high": ci[1]})
            else:
                row[column] = _cell(value, ci, digits)
        rows.append({**row, "source": "this run"} if reference else row)
    if reference:  # headlines, and the breakdown columns a row names as its own (coco30k/fid)
        rows += [{"model": ref["model"], "source": ref["citation"],
                  **{k: float(v) if numeric else v for k, v in ref["scores"].items()
                     if "/" not in k or k in ref.get("columns", [])}}
                 for ref in reference_rows()]
    return pd.DataFrame(rows)


def long_frame(runs: list[dict], numeric: bool = False, reference: bool = False) -> pd.DataFrame:
    """--details: one row per model, task and metric, so a breakdown reads down a terminal, not across it."""
    rows = []
    for run in runs:
        for _, task, metric, value, ci, digits in _run_columns(run, details=True):
            row = {"model": run["model"]["name"], "task": task, "metric": metric}
            if numeric:
                row.update({"value": value, "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None})
            else:
                row["value"] = _cell(value, ci, digits)
            rows.append({**row, "source": "this run"} if reference else row)
    if reference:
        for ref in reference_rows():
            for column, value in ref["scores"].items():
                task, _, metric = column.partition("/")
                row = {"model": ref["model"], "task": task, "metric": metric or "(headline)",
                       "value": float(value) if numeric else value}
                rows.append({**row, "source": ref["citation"]})
    return pd.DataFrame(rows)


def render(runs: list[dict], fmt: str = "md", details: bool = False, reference: bool = False) -> str:
    """A whole leaderboard document in one of FORMATS."""
    build = long_frame if details else frame
    if fmt == "csv":
        return table(build(runs, numeric=True, reference=reference), "csv")
    galleries = [gallery(run, Path(run["output"])) for run in runs if fmt == "html" and run.get("output")]
    return table(build(runs, reference=reference), fmt, extra_html="\n".join(g for g in galleries if g))


def table(df: pd.DataFrame, fmt: str, extra_html: str = "", title: str = "hermes-bench leaderboard") -> str:
    """A table in one of the export formats: Markdown, CSV, LaTeX (booktabs) or a whole HTML page."""
    if fmt == "csv":
        return _ended(df.to_csv(index=False))
    cells = df.fillna("").astype(str)
    if fmt == "md":
        return _ended(tabulate(cells, headers="keys", tablefmt="github", showindex=False, disable_numparse=True))
    if fmt == "latex":
        text = tabulate(cells, headers="keys", tablefmt="latex_booktabs", showindex=False, disable_numparse=True)
        return _ended("% needs \\usepackage{booktabs}\n" + text.replace("Δ", "$\\Delta$"))
    if fmt == "html":
        return _ended(f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                      f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
                      f"{cells.to_html(index=False, border=0, escape=True)}\n{extra_html}\n</body>\n</html>")
    raise ValueError(f"unknown leaderboard format {fmt!r}: use one of {', '.join(FORMATS)}")


def _ended(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
