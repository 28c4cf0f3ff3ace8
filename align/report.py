"""The rounds table in the leaderboard formats, and a plot of U, G, gap and homologous gap per round."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

from hermes_bench.align.gate import SIDES
from hermes_bench.report.leaderboard import FORMATS, table
from hermes_bench.storage import atomic_write_bytes

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

SUFFIX = {"md": "md", "csv": "csv", "latex": "tex", "html": "html"}
LABELS = {"homologous_gap": "hgap"}  # short column names in the rounds table


def summary_frame(rows: list[dict]) -> pd.DataFrame:
    """One line per round attempt: the decision and U, G, gap and the homologous gap (hgap) after it, with deltas
    and paired intervals."""
    out = []
    for r in rows:
        line = {"round": r["round"], "beta": r["beta"], "decision": r["decision"],
                "pairs (und/gen)": f"{r['pairs_understanding']}/{r['pairs_generation']}"}
        for side in SIDES:
            if f"{side}_after" in r:
                name = LABELS.get(side, side)
                line[name] = f"{r[f'{side}_after']:.3f}"
                low, high = r[f"{side}_ci_low"], r[f"{side}_ci_high"]
                line[f"Δ{name}"] = f"{r[f'{side}_delta']:+.3f} [{low:+.3f}, {high:+.3f}]"
        line["reason"] = r["reason"]
        out.append(line)
    return pd.DataFrame(out)


def deltas_frame(decision: dict) -> pd.DataFrame:
    """A comparison's rows: before, after, delta and its paired interval, for U, G, gap and each task (a task's
    extra columns, such as coco30k's FID, have no interval)."""
    def change(d: dict) -> str:
        low, high = d["ci"]
        defined = all(x is not None and x == x for x in (low, high))  # null in JSON, NaN in memory
        return f"{d['delta']:+.3f}" + (f" [{low:+.3f}, {high:+.3f}]" if defined else "")

    return pd.DataFrame([{"": name, "before": f"{d['before']:.3f}", "after": f"{d['after']:.3f}",
                          "delta [95% CI]": change(d)}
                         for name, d in {**decision["sides"], **decision["tasks"]}.items()])


def write_table(rows: list[dict], folder: Path) -> None:
    """rounds.md / .csv (every number) / .tex / .html beside rounds.json."""
    for fmt in FORMATS:
        df = pd.DataFrame(rows) if fmt == "csv" else summary_frame(rows)
        atomic_write_bytes(folder / f"rounds.{SUFFIX[fmt]}", table(df, fmt, title="hermes-bench align rounds").encode())


def plot_rounds(rows: list[dict], path: Path) -> None:
    """U, G, gap and homologous gap of the kept model after each round (round 0: before alignment), each kept
    round with the 95% interval of its paired change placed on the value before it; rolled-back attempts as x."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for side, colour in zip(SIDES, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True):
        if not rows or f"{side}_before" not in rows[0]:
            continue
        xs, ys, below, above = [0], [rows[0][f"{side}_before"]], [0.0], [0.0]
        for r in rows:
            if r["decision"] == "kept":
                before, after = r[f"{side}_before"], r[f"{side}_after"]
                xs.append(r["round"])
                ys.append(after)
                below.append(max(after - (before + r[f"{side}_ci_low"]), 0.0))
                above.append(max(before + r[f"{side}_ci_high"] - after, 0.0))
            else:
                ax.plot(r["round"], r[f"{side}_after"], "x", color=colour)
        ax.errorbar(xs, ys, yerr=[below, above], fmt="o-", color=colour, capsize=3, label=LABELS.get(side, side))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("score")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
