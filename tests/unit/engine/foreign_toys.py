"""Foreign steps for the foreign-pool tests: they sleep, fail, crash, count and report.

A module of their own (not a test module), so a worker process unpickles
them by the same name the tests import them by. The crashing ones crash only
inside a foreign worker: run in the test process they raise instead, so a
regression that ran them here fails a test rather than killing pytest.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]


def in_worker() -> bool:
    """Whether this process is a foreign-step worker."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec is not None and spec.name == "academy_ml.engine.foreign_worker"


class _Passthrough(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    def transform(self, X: Any) -> Any:
        return X


class Sleep(_Passthrough):
    """Sleeps ``seconds`` in fit, after noting its pid in ``log_dir`` (when given)."""

    def __init__(self, seconds: float = 0.0, log_dir: str = "") -> None:
        self.seconds = seconds
        self.log_dir = log_dir

    def fit(self, X: Any, y: Any = None) -> Sleep:
        if self.log_dir:
            (Path(self.log_dir) / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
        time.sleep(self.seconds)
        return self


class FailOn(_Passthrough):
    """Raises in fit when the training rows number ``n_rows``."""

    def __init__(self, n_rows: int = -1) -> None:
        self.n_rows = n_rows

    def fit(self, X: Any, y: Any = None) -> FailOn:
        if self.n_rows < 0 or len(X) == self.n_rows:
            raise RuntimeError(f"failed on {len(X)} rows")
        return self


class Crash(_Passthrough):
    """Kills its worker process in fit on ``n_rows`` rows: ``exit`` (os._exit(3)) or ``segv``."""

    def __init__(self, how: str = "exit", n_rows: int = -1) -> None:
        self.how = how
        self.n_rows = n_rows

    def fit(self, X: Any, y: Any = None) -> Crash:
        if self.n_rows >= 0 and len(X) != self.n_rows:
            return self
        if not in_worker():
            raise RuntimeError("Crash ran outside a foreign worker")
        if self.how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        os._exit(3)


class CountFits(_Passthrough):
    """Writes one file per fit into ``log_dir`` (pinned randomness, so it may be deduplicated)."""

    def __init__(self, log_dir: str = "", random_state: int = 0) -> None:
        self.log_dir = log_dir
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> CountFits:
        (Path(self.log_dir) / uuid.uuid4().hex).touch()
        return self


class SharedFiles(_Passthrough):
    """Notes how many shared files exist beside its (memory-mapped) input, or -1."""

    def __init__(self, log_dir: str = "") -> None:
        self.log_dir = log_dir

    def fit(self, X: Any, y: Any = None) -> SharedFiles:
        count = -1
        if isinstance(X, np.memmap):
            count = len(os.listdir(Path(str(X.filename)).parent))
        (Path(self.log_dir) / f"{count}-{uuid.uuid4().hex}").touch()
        return self


class ReportThreads(_Passthrough):
    """Fails with the OpenMP and BLAS thread counts its fit sees, e.g. 'openmp=1 blas=1'."""

    def fit(self, X: Any, y: Any = None) -> ReportThreads:
        seen: dict[str, int] = {}
        for pool in threadpool_info():
            seen[pool["user_api"]] = max(seen.get(pool["user_api"], 0), pool["num_threads"])
        raise RuntimeError(f"openmp={seen.get('openmp')} blas={seen.get('blas')}")
