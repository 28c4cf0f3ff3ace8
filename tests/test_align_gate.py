"""The gate's paired comparison on scored tasks built from per-sample records (the real Scored / TaskSpec types)."""

from pathlib import Path

import numpy as np
import pytest

from hermes_bench.align.gate import compare
from hermes_bench.registry import TaskSpec
from hermes_bench.runners.shapes_gap import gap
from hermes_bench.summary import Part, Scored


def _mean(field):
    return lambda rs: float(np.mean([r[field] for r in rs]))


def _task(name, kind, values):
    spec = TaskSpec(name=name, kind=kind, path=Path(f"{name}.yaml"), headline="acc", headline_max=1.0, source="",
                    version="1", pooled=False, config={})
    items = [{"correct": v} for v in values]
    return Scored(spec, {}, [Part(items, _mean("correct"))])


def _gap_task(u, g):
    spec = TaskSpec(name="gap_task", kind="gap", path=Path("g.yaml"), headline="gap", headline_max=1.0, source="",
                    version="1", pooled=False, config={})
    items = [{"scene_index": i // 2, "understanding_correct": a, "generation_correct": b}
             for i, (a, b) in enumerate(zip(u, g, strict=True))]
    return Scored(spec, {}, [Part(items, gap, lambda r: r["scene_index"])])


def test_keeps_a_round_that_closes_the_gap_and_rolls_back_one_that_drops_a_task():
    rng = np.random.default_rng(0)
    u = rng.random(400) < 0.9
    g_before, g_better = rng.random(400) < 0.6, rng.random(400) < 0.8
    before = [_task("und", "understanding", u), _task("gen", "generation", g_before)]
    better = [_task("und", "understanding", u), _task("gen", "generation", g_before | g_better)]
    decision = compare(before, better)
    assert decision.keep and decision.sides["gap"].delta < 0
    assert decision.sides["G"].ci[0] > 0 and decision.tasks["und"].delta == 0 and decision.tasks["und"].ci == (0, 0)
    worse_u = u & (rng.random(400) < 0.7)
    worse = [_task("und", "understanding", worse_u), _task("gen", "generation", g_before | g_better)]
    decision = compare(before, worse)
    assert not decision.keep and "und" in decision.reason  # the gap shrank, but understanding fell


def test_gap_tasks_report_both_sides_paired():
    rng = np.random.default_rng(1)
    u, g = rng.random(600) < 0.9, rng.random(600) < 0.6
    g_after = g | (rng.random(600) < 0.5)
    decision = compare([_gap_task(u, g)], [_gap_task(u, g_after)])
    assert decision.keep
    side = decision.tasks["gap_task/generation"]
    assert side.delta == pytest.approx(g_after.mean() - g.mean()) and side.ci[0] > 0
    assert decision.tasks["gap_task/understanding"].delta == 0


def test_the_homologous_gap_decides_when_the_gate_has_a_gap_task():
    rng = np.random.default_rng(2)
    u, g = rng.random(400) < 0.9, rng.random(400) < 0.7
    hu, hg = rng.random(600) < 0.9, rng.random(600) < 0.6
    g_slightly_worse = g.copy()
    g_slightly_worse[np.flatnonzero(g)[:2]] = False  # G -0.005: within the tolerance, but U - G grows
    before = [_task("und", "understanding", u), _task("gen", "generation", g), _gap_task(hu, hg)]
    closer = [_task("und", "understanding", u), _task("gen", "generation", g_slightly_worse),
              _gap_task(hu, hg | (rng.random(600) < 0.5))]
    decision = compare(before, closer)
    assert decision.sides["gap"].delta > 0 and decision.sides["homologous_gap"].delta < 0
    assert decision.keep and decision.reason.startswith("the homologous gap shrank")
    further = [_task("und", "understanding", u), _task("gen", "generation", g | (rng.random(400) < 0.5)),
               _gap_task(hu | (rng.random(600) < 0.8), hg)]  # understanding outruns generation
    decision = compare(before, further)
    assert decision.sides["gap"].delta < 0 and decision.sides["homologous_gap"].delta > 0
    assert not decision.keep and decision.reason.startswith("the homologous gap did not shrink")


def test_a_shrink_within_the_noise_is_rolled_back():
    rng = np.random.default_rng(3)
    u, g = rng.random(600) < 0.9, rng.random(600) < 0.6
    g_barely = g.copy()
    g_barely[np.flatnonzero(~g)[:10]] = True
    g_barely[np.flatnonzero(g)[:7]] = False  # the gap shrinks by 0.005, far inside its interval
    decision = compare([_gap_task(u, g)], [_gap_task(u, g_barely)])
    change = decision.sides["homologous_gap"]
    assert change.delta < 0 < change.ci[1]
    assert not decision.keep and decision.reason.startswith("the homologous gap did not shrink beyond its noise")


def test_different_items_are_refused():
    with pytest.raises(ValueError, match="different items"):
        compare([_task("und", "understanding", [1, 0])], [_task("und", "understanding", [1, 0, 1])])
