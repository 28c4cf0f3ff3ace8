"""Leaderboards from results files: one row per run; task headlines, U, G and gap, each with its 95% CI."""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

FORMATS = ("md", "csv", "latex", "html")


def _cell(value: float, ci: list[float], digits: int) -> str:
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def frame(runs: list[dict], numeric: bool = False) -> pd.DataFrame:
    """Rows = runs. numeric=True gives value, ci_low and ci_high columns instead of formatted cells."""
    rows = []
    for run in runs:
        row: dict = {"model": run["model"]["name"]}
        columns = [(name, h["value"], h["ci"], 3 if h["max"] <= 1 else 1)
                   for name, h in run["headlines"].items()]
        columns += [(side, run["summary"][side]["value"], run["summary"][side]["ci"], 3)
                    for side in ("U", "G", "gap") if side in run["summary"]]
        for name, value, ci, digits in columns:
            if numeric:
                row.update({name: value, f"{name}_ci_low": ci[0], f"{name}_ci_high": ci[1]})
            else:
                row[name] = _cell(value, ci, digits)
        rows.append(row)
    return pd.DataFrame(rows)


def render(runs: list[dict], fmt: str = "md") -> str:
    if fmt == "csv":
        return frame(runs, numeric=True).to_csv(index=False)
    df = frame(runs).fillna("")
    if fmt == "md":
        return tabulate(df, headers="keys", tablefmt="github", showindex=False)
    if fmt == "latex":
        return tabulate(df, headers="keys", tablefmt="latex_booktabs", showindex=False)
    if fmt == "html":
        return df.to_html(index=False, border=0)
    raise ValueError(f"unknown leaderboard format {fmt!r}: use one of {', '.join(FORMATS)}")
