"""Leaderboards from results files: one row per run; task headlines, U, G and gap, each with its 95% CI."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from hermes_bench.report.gallery import gallery

FORMATS = ("md", "csv", "latex", "html")


def _cell(value: float, ci: list[float] | None, digits: int) -> str:
    if ci is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def reference_rows() -> list[dict]:
    """Published numbers (results/reference/paper_rows.json), each with its citation."""
    return json.loads(files("hermes_bench.reference").joinpath("paper_rows.json").read_text())


def frame(runs: list[dict], numeric: bool = False, details: bool = False, reference: bool = False) -> pd.DataFrame:
    """Rows = runs. numeric=True gives value, ci_low and ci_high columns instead of formatted cells;
    details=True adds each task's breakdown (a group's members, extra metrics) after its headline;
    reference=True adds the published rows, with a source column citing them."""
    rows = []
    for run in runs:
        row: dict = {"model": run["model"]["name"]}
        columns = []
        for name, h in run["headlines"].items():
            digits = 3 if h["max"] <= 1 else 1
            columns.append((name, h["value"], h["ci"], digits))
            if details:
                columns += [(f"{name}/{k}", v, None, digits) for k, v in h.get("details", {}).items()]
        columns += [(side, run["summary"][side]["value"], run["summary"][side]["ci"], 3)
                    for side in ("U", "G", "gap") if side in run["summary"]]
        for name, value, ci, digits in columns:
            if numeric:
                row[name] = value
                if ci is not None:
                    row.update({f"{name}_ci_low": ci[0], f"{name}_ci_high": ci[1]})
            else:
                row[name] = _cell(value, ci, digits)
        rows.append({**row, "source": "this run"} if reference else row)
    if reference:
        rows += [{"model": ref["model"], "source": ref["citation"],
                  **{k: v if numeric else _cell(v, None, 3 if v <= 1 else 1) for k, v in ref["scores"].items()}}
                 for ref in reference_rows()]
    return pd.DataFrame(rows)


def render(runs: list[dict], fmt: str = "md", details: bool = False, reference: bool = False) -> str:
    if fmt == "csv":
        return frame(runs, numeric=True, details=details, reference=reference).to_csv(index=False)
    text = table(frame(runs, details=details, reference=reference), fmt)
    if fmt == "html":
        galleries = [gallery(run, Path(run["output"])) for run in runs if run.get("output")]
        return text + "\n" + "\n".join(g for g in galleries if g)
    return text


def table(df: pd.DataFrame, fmt: str) -> str:
    """A table in one of the export formats: Markdown, CSV, LaTeX (booktabs) or HTML."""
    if fmt == "csv":
        return df.to_csv(index=False)
    df = df.fillna("")
    if fmt == "md":
        return tabulate(df, headers="keys", tablefmt="github", showindex=False)
    if fmt == "latex":
        return tabulate(df, headers="keys", tablefmt="latex_booktabs", showindex=False)
    if fmt == "html":
        return df.to_html(index=False, border=0)
    raise ValueError(f"unknown leaderboard format {fmt!r}: use one of {', '.join(FORMATS)}")
