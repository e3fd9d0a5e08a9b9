"""Scenario: the MOFA loop's short mode closes the loop (well under a minute).

The example's own driver runs the three agents on Academy's in-process
exchange with a thread-pool endpoint and a budget of 48 simulations. The
loop must close: the planner's retrain strategy fires (in the strategy log),
model versions increase, the best uptake found never decreases, and every
simulated candidate has exactly one stored result.
"""

from __future__ import annotations

from collections import Counter

from mofa.run import run_loop


def test_the_short_loop_retrains_by_strategy_and_stores_one_result_per_candidate() -> None:
    result, payloads = run_loop(
        seed=0,
        retrain=True,
        budget=48,
        round_size=8,
        endpoint="local-pool",
        extra=["planner.retrain_after=8", "planner.refit_every=8", "planner.review_interval_s=0.5"],
    )
    assert result.reason == "done"
    assert len(result.rows) >= 48
    assert result.retrain_firings >= 1
    assert len(result.model_versions) >= 2
    assert result.model_versions == sorted(result.model_versions)
    best = [s.best_uptake_so_far for s in result.summaries if s.best_uptake_so_far is not None]
    assert best == sorted(best)
    ids = Counter(row.candidate_id for row in result.rows)
    assert max(ids.values()) == 1
    assert set(ids) == set(payloads)  # every stored result belongs to a recorded candidate
    assert all(row.valid for row in result.rows)
