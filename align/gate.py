"""The gate of a self-play round: the candidate's gate-task scores against the last kept model's, each delta with
a paired bootstrap interval (both evaluated on the same items with the same seeds, resampled together).

Keep the round when the gap shrinks with an interval that excludes 0 (a shrink within the noise is not a gain, and
kept noise accumulates over rounds) and no task drops by more than `tolerance` with an interval that excludes 0;
otherwise roll back. The gap is the homologous gap when a gap task is among the gate tasks, else U - G.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from hermes_bench.scoring.stats import N_BOOTSTRAP, bootstrap_distribution, interval
from hermes_bench.summary import Scored

SIDES = ("U", "G", "gap", "homologous_gap")
NO_INTERVAL = (float("nan"), float("nan"))  # a task's extra columns (coco30k's FID): reported, never gating


@dataclass
class Delta:
    before: float
    after: float
    delta: float
    ci: tuple[float, float]  # NO_INTERVAL where none is defined


@dataclass
class Decision:
    keep: bool
    reason: str
    tasks: dict[str, Delta]
    sides: dict[str, Delta]  # U, G, gap (U - G) and homologous_gap (of gap tasks), when the gate tasks give them

    def as_dict(self) -> dict:
        return asdict(self)


def _paired(before: Scored, after: Scored, rng: np.random.Generator,
            statistic: Callable[[list], float] | None = None) -> np.ndarray:
    """The distribution of after - before (normalised headline, or `statistic` of the items), resampling the same
    units on both sides."""
    dists = []
    for a, b in zip(before.parts, after.parts, strict=True):
        if len(a.items) != len(b.items):
            raise ValueError(f"{before.spec.name}: the two runs scored different items; evaluate both with the "
                             "same seed and limit")
        unit = (lambda p, u=a.unit: u(p[0])) if a.unit else None
        stat = statistic or a.statistic
        dists.append(bootstrap_distribution(list(zip(a.items, b.items, strict=True)),
                                            lambda ps, s=stat: s([y for _, y in ps]) - s([x for x, _ in ps]),
                                            rng, N_BOOTSTRAP, unit))
    return np.mean(dists, axis=0) / (1 if statistic else before.spec.headline_max)


def _share(field: str) -> Callable[[list], float]:
    return lambda records: float(np.mean([r[field] for r in records]))


def compare(before: list[Scored], after: list[Scored], tolerance: float = 0.01, seed: int = 0) -> Decision:
    """Paired deltas per task and for U, G, gap and homologous gap, and the keep / roll back decision."""
    rng = np.random.default_rng(seed)
    by_name = {s.spec.name: s for s in after}
    tasks, dists = {}, {}
    for b in before:
        a = by_name[b.spec.name]
        dists[b.spec.name] = _paired(b, a, rng)
        tasks[b.spec.name] = Delta(b.headline(), a.headline(), a.headline() - b.headline(),
                                   interval(dists[b.spec.name]))
        if b.spec.kind == "gap":  # its two sides too, paired the same way
            for side in ("understanding", "generation"):
                share = _share(f"{side}_correct")
                before_value, after_value = share(b.parts[0].items), share(a.parts[0].items)
                tasks[f"{b.spec.name}/{side}"] = Delta(before_value, after_value, after_value - before_value,
                                                       interval(_paired(b, a, rng, share)))
        for column in b.spec.config.get("metadata", {}).get("columns", []):
            before_value, after_value = b.metrics[b.spec.name][column], a.metrics[a.spec.name][column]
            tasks[f"{b.spec.name}/{column}"] = Delta(before_value, after_value, after_value - before_value,
                                                     NO_INTERVAL)
    sides = {}
    for side, kind in (("U", "understanding"), ("G", "generation"), ("homologous_gap", "gap")):
        names = [s.spec.name for s in before if s.spec.kind == kind]
        if names:
            sides[side] = (float(np.mean([tasks[n].before for n in names])),
                           float(np.mean([tasks[n].after for n in names])), np.mean([dists[n] for n in names], 0))
    if "U" in sides and "G" in sides:
        (ub, ua, ud), (gb, ga, gd) = sides["U"], sides["G"]
        sides["gap"] = (ub - gb, ua - ga, ud - gd)
    side_deltas = {k: Delta(b, a, a - b, interval(d)) for k in SIDES if k in sides for b, a, d in [sides[k]]}
    # the homologous gap (the paper's measure) decides when the gate has it: it follows the pairs' effect, while
    # U - G of small benchmark sets moves by less than its noise; the benchmark tasks still guard against drops
    deciding = "homologous_gap" if "homologous_gap" in side_deltas else "gap"
    label = deciding.replace("_", " ")
    higher_is_better = [n for n in tasks if not (n in by_name and by_name[n].spec.kind == "gap")]
    dropped = [n for n in higher_is_better if tasks[n].delta < -tolerance and tasks[n].ci[1] < 0]
    if deciding not in side_deltas:
        keep, reason = False, "the gate tasks give no gap (add understanding and generation tasks, or a gap task)"
    elif dropped:
        keep, reason = False, f"dropped by more than {tolerance:g}: {', '.join(dropped)}"
    elif (change := side_deltas[deciding]).ci[1] >= 0:
        keep, reason = False, (f"the {label} did not shrink beyond its noise "
                               f"({change.delta:+.4f} [{change.ci[0]:+.4f}, {change.ci[1]:+.4f}])")
    else:
        keep, reason = True, f"the {label} shrank by {-change.delta:.4f} and no task dropped"
    return Decision(keep, reason, tasks, side_deltas)
