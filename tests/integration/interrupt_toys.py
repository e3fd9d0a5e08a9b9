"""A MOFA planner whose surrogate refit starts with a native batch of minutes.

The scenario in ``mofa_embedded_interrupt_test.py`` stops ``up`` while that
batch runs on the planner's worker thread: the marker file (its path in
``INTERRUPT_TOYS_MARKER``) is written by that thread just before the batch
enters the runtime.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
from mofa.agents import MofaPlanner
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import academy_ml as aml


def long_batch() -> aml.RunReport:
    """160 distinct neighbour searches over 32,000 training rows, one thread: minutes.

    Each PCA width (with and without scaling) is a design of its own, so
    nothing is shared; one node (one search) takes about a second.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40_000, 16))
    y = X[:, 0] + rng.normal(size=40_000)
    pipelines = [
        make_pipeline(*scale, PCA(n_components=width), KNeighborsRegressor(5))
        for scale in ((), (StandardScaler(),))
        for width in range(1, 17)
    ]
    plan = aml.compile(pipelines, cv=5, X=X, y=y, scoring="r2")
    Path(os.environ["INTERRUPT_TOYS_MARKER"]).touch()
    return aml.run(plan, threads=1)


class SlowRefitPlanner(MofaPlanner):
    """:class:`MofaPlanner` whose every surrogate refit first runs :func:`long_batch`."""

    async def refit_surrogate(self) -> str:
        """Run the long batch on a worker thread, then refit as usual."""
        await asyncio.to_thread(long_batch)
        return await super().refit_surrogate()
