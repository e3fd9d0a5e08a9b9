"""``evaluate(progress=...)``: pipelines and folds done, reported as the batch runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import ExtraTreeRegressor

import academy_ml as aml
from academy_ml.engine.progress import Progress
from academy_ml.exceptions import ParameterError

CV = 3


def _batch(n: int) -> list[Any]:
    return [
        make_pipeline(StandardScaler(), Ridge(alpha=float(i)))
        if i % 3
        else ExtraTreeRegressor(random_state=i, max_depth=3)
        for i in range(n)
    ]


def test_a_callback_sees_every_part_and_results_are_unchanged(diabetes: Any) -> None:
    X, y = diabetes
    events: list[Progress] = []

    reported = aml.evaluate(_batch(23), X, y, cv=CV, progress=events.append)
    quiet = aml.evaluate(_batch(23), X, y, cv=CV)

    assert events[0] == Progress(0, 23, 0, 0)
    assert events[-1] == Progress(23, 23, 23 * CV, 23 * CV)
    assert events[-1].finished
    assert not events[-2].finished
    done = [e.pipelines_done for e in events]
    assert done == sorted(done)
    assert len(set(done)) == len(done)
    assert len(events) == 1 + 8  # parts of ceil(23 / 10) = 3 pipelines
    assert [r.index for r in reported] == list(range(23))
    for a, b in zip(reported, quiet, strict=True):
        np.testing.assert_allclose(a.fold_scores, b.fold_scores, rtol=0, atol=1e-12)


def test_parts_share_work_through_the_given_cache(diabetes: Any, tmp_path: Any) -> None:
    X, y = diabetes
    cache = aml.Cache(tmp_path / "cache")
    # Every pipeline scales the same way: parts after the first read the scaler.
    batch = [make_pipeline(StandardScaler(), Ridge(alpha=a)) for a in (1.0, 2.0, 3.0, 4.0)]

    aml.evaluate(batch, X, y, cv=CV, cache=cache, progress=lambda event: None)

    assert cache.stats().hits >= 3 * CV


def test_several_metrics_report_folds_once(diabetes: Any) -> None:
    X, y = diabetes
    events: list[Progress] = []

    aml.evaluate(
        _batch(4), X, y, cv=CV, scoring=["r2", "neg_mean_absolute_error"], progress=events.append
    )

    assert events[-1] == Progress(4, 4, 4 * CV, 4 * CV)


def test_progress_true_draws_a_bar_on_stderr(
    diabetes: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = diabetes

    aml.evaluate(_batch(5), X, y, cv=CV, progress=True)

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "evaluating" in captured.err
    assert "5/5" in captured.err
    assert f"{5 * CV}/{5 * CV} folds" in captured.err


def test_progress_is_off_by_default(diabetes: Any, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = diabetes

    aml.evaluate(_batch(2), X, y, cv=CV)
    aml.evaluate(_batch(2), X, y, cv=CV, progress=False)

    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("progress", ["yes", 1, object()])
def test_a_bad_progress_is_refused(progress: Any, diabetes: Any) -> None:
    X, y = diabetes

    with pytest.raises(ParameterError, match="progress must be None, a bool or a callable"):
        aml.evaluate(_batch(2), X, y, cv=CV, progress=progress)


def test_a_failing_callback_stops_the_evaluation(diabetes: Any) -> None:
    X, y = diabetes

    def stop(event: Progress) -> None:
        if event.pipelines_done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        aml.evaluate(_batch(12), X, y, cv=CV, progress=stop)
