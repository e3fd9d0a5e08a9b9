"""Pipeline search: academy_ml's engine against what users run today.

An agent simulator (``academy_ml.agents.search_space``) proposes a first batch
of N pipelines (``explore``: imputer, scaler, feature step, model family and
hyperparameters mutated from earlier proposals) and then a second batch
(``exploit``: children of the best quarter of the first that mostly keep
their preprocessing and change the model or its penalty). Data: the
nycflights13 flights of 2013 with weather, aircraft, destination and
congestion features (``benchmarks/flights.py``: 327,346 rows, 40 numeric and
5 categorical columns, missing values), target ``arr_delay``, r2 with 5-fold
CV (an int cv: KFold without shuffling, as ``cross_val_score`` does). The
full run proposes Ridge and LinearRegression only: at 200,000 rows one KNN
fold takes 2-23 s in scikit-learn (KD-tree over 6-12 dimensions) and ~7 s in
academy_ml (exact brute force), so a few KNN pipelines would dominate both
runs and measure neighbour search rather than sharing work. ``--knn`` adds
them (always after a PCA or SelectKBest step).

Every variant runs in a fresh spawned process on the same data and batch:

  B0             sequential scikit-learn ``cross_val_score`` per pipeline
  B1             B0 with ``Pipeline(memory=joblib.Memory(tmpdir))`` on every
                 pipeline, nested ones included, so transformer fits are
                 cached across pipelines (fresh directory, deleted after)
  B2             ``joblib.Parallel(n_jobs=2)`` over pipelines
  ours cold      ``aml.compile`` + ``aml.run`` with an empty cache (a fresh
                 directory, the default memory and disk budgets)
  ours warm      batch 1 runs first with the cache (untimed); timed is
                 batch 2 on the warm cache
  ours no-CSE    cold, without common-subexpression elimination
  ours 1 thread  cold, one worker thread

Timed: building the plan and running it, or the scikit-learn calls; not
loading data. Peak RSS is the high-water mark of the timed section
(``/proc/self/clear_refs``, so Linux only); for B2 it is the parent's plus
the lifetime peak of each of its child processes (joblib's workers). Ops
and cache hits are what ``aml.run`` reports (operations computed, nodes
served from the cache). The ratios compare wall times; for ours warm that is
batch 2 against the baselines' batch 1 (same size, same search space).
Everything temporary (the table handed to the processes, B1's joblib store,
ours' caches) lives in one directory under ``--cache-dir`` and is removed at
the end; on the full table B1's store alone grows to several GB (1.5 GB for
16 pipelines on one fold).

Parity: fold scores must match the reference within 1e-6. The reference is
B0 for batch 1. For ours warm (batch 2) it is academy_ml on batch 2 without
a cache, computed untimed in the same process; in ``--quick`` mode B0 also
scores batch 2 in its own process and ours warm must match it too, which
asserts batch-2 parity against scikit-learn. The script exits non-zero on
any larger difference; the speed and memory goals are printed, not enforced.

``--quick`` (12 pipelines, 2,000 flights, KNN included) checks that all
variants agree, in about 30 s on 2 cores, for ``make test``.

Usage: python benchmarks/pipeline_search.py [--pipelines 64] [--rows N]
    [--seed 0] [--cache-dir DIR] [--knn] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from flights import CATEGORICAL, NUMERIC, flights_table
from joblib import Memory, Parallel, delayed
from joblib.externals.loky import get_reusable_executor
from parity import Scores, difference
from rich.console import Console
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline

import academy_ml as aml
from academy_ml.agents.search_space import Candidate, exploit, explore_candidates

VARIANTS = ("B0", "B1", "B2", "ours cold", "ours warm", "ours no-CSE", "ours 1 thread")
#: Largest allowed fold-score difference from the reference.
TOLERANCE = 1e-6
CV = 5
#: Largest PCA / SelectKBest size the agent proposes (of 75 encoded columns).
MAX_K = 12
TARGET = "__target__"

T = TypeVar("T")


@dataclass(frozen=True)
class Workload:
    """What every variant process gets: where the data is and what to run."""

    table: Path
    batch: list[Candidate]
    models: tuple[str, ...]
    seed: int
    scratch: Path


@dataclass(frozen=True)
class Measurement:
    """One variant's numbers.

    ``reference`` and ``batch`` are set by ours warm only: the batch-2
    scores of academy_ml without a cache, and batch 2 itself.
    """

    seconds: float
    peak_mib: float
    scores: Scores
    executed: int | None = None
    cache_hits: int | None = None
    reference: Scores | None = None
    batch: list[Candidate] | None = None


def run_variant(variant: str, work: Workload) -> Measurement:
    """Runs one variant in this (fresh) process."""
    X = pd.read_parquet(work.table)
    y = X.pop(TARGET).to_numpy()
    pipelines = _build(work.batch)
    if variant == "B0":
        scores, seconds, peak = _timed(lambda: _cross_validate(pipelines, X, y))
        return Measurement(seconds, peak, scores)
    if variant == "B1":
        return _with_joblib_memory(pipelines, X, y, work.scratch)
    if variant == "B2":
        return _parallel(pipelines, X, y)
    if variant == "ours warm":
        return _ours_warm(work, X, y)
    threads = 1 if variant == "ours 1 thread" else None
    return _ours(
        pipelines, X, y, _cache(work.scratch), cse=variant != "ours no-CSE", threads=threads
    )


def _build(batch: Sequence[Candidate]) -> list[Pipeline]:
    return [c.build(NUMERIC, CATEGORICAL, "regression") for c in batch]


def _cross_validate(pipelines: Sequence[Any], X: pd.DataFrame, y: Scores) -> Scores:
    return np.array([cross_val_score(p, X, y, cv=CV, scoring="r2") for p in pipelines])


def _with_joblib_memory(
    pipelines: list[Pipeline], X: pd.DataFrame, y: Scores, scratch: Path
) -> Measurement:
    location = tempfile.mkdtemp(dir=scratch)
    try:
        memory = Memory(location, verbose=0)
        cached = [_set_memory(p, memory) for p in pipelines]
        scores, seconds, peak = _timed(lambda: _cross_validate(cached, X, y))
    finally:
        shutil.rmtree(location)
    return Measurement(seconds, peak, scores)


def _set_memory(estimator: Any, memory: Memory) -> Any:
    """``estimator`` with ``memory`` set on every Pipeline, nested ones included."""
    if isinstance(estimator, Pipeline):
        steps = [(name, _set_memory(step, memory)) for name, step in estimator.steps]
        return Pipeline(steps, memory=memory)
    if isinstance(estimator, ColumnTransformer):
        parts = [(n, _set_memory(t, memory), cols) for n, t, cols in estimator.transformers]
        return estimator.set_params(transformers=parts)
    return estimator


def _parallel(pipelines: list[Pipeline], X: pd.DataFrame, y: Scores) -> Measurement:
    def run() -> Scores:
        jobs = (delayed(cross_val_score)(p, X, y, cv=CV, scoring="r2") for p in pipelines)
        return np.array(Parallel(n_jobs=2)(jobs))

    scores, seconds, peak = _timed(run)
    workers = sum(_peak_mib(pid) for pid in _children())
    # joblib keeps idle workers for 300 s, and this process cannot exit before they do.
    get_reusable_executor(max_workers=2).shutdown(wait=True)
    return Measurement(seconds, peak + workers, scores)


def _children() -> list[int]:
    """Process ids whose parent is this process (joblib's workers, still alive)."""
    me = os.getpid()
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            pids.append(int(stat.parent.name))
    return pids


def _cache(scratch: Path) -> aml.Cache:
    return aml.Cache(tempfile.mkdtemp(dir=scratch))


def _ours(
    pipelines: list[Pipeline],
    X: pd.DataFrame,
    y: Scores,
    cache: aml.Cache | None,
    *,
    cse: bool = True,
    threads: int | None = None,
) -> Measurement:
    """Compiles and runs one plan, timed; raises if any pipeline failed."""
    options = aml.Options(cse=cse)
    report, seconds, peak = _timed(
        lambda: aml.run(
            aml.compile(pipelines, cv=CV, X=X, y=y, scoring="r2", options=options),
            threads=threads,
            cache=cache,
        )
    )
    failed = [r for r in report.results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} pipelines failed, first: {failed[0].error}")
    scores = np.array([r.fold_scores for r in report.results])
    return Measurement(seconds, peak, scores, report.executed, report.cache_hits)


def _ours_warm(work: Workload, X: pd.DataFrame, y: Scores) -> Measurement:
    """Batch 1 fills the cache (untimed); batch 2 is timed on the warm cache."""
    cache = _cache(work.scratch)
    first = _ours(_build(work.batch), X, y, cache)
    batch = exploit(
        work.batch,
        len(work.batch),
        scores=first.scores.mean(axis=1).tolist(),
        seed=work.seed + 1,
        max_k=MAX_K,
        models=work.models,
    )
    pipelines = _build(batch)
    warm = _ours(pipelines, X, y, cache)
    reference = _ours(pipelines, X, y, None)
    return replace(warm, reference=reference.scores, batch=batch)


def _timed(run: Callable[[], T]) -> tuple[T, float, float]:
    """``run()``, its wall seconds and this process's peak RSS (MiB) during it."""
    _reset_peak()
    start = time.perf_counter()
    value = run()
    return value, time.perf_counter() - start, _peak_mib()


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _peak_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def _in_fresh_process(variant: str, work: Workload) -> Measurement:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(run_variant, variant, work).result()


def main() -> None:
    """Runs every variant, prints the table and the goals, checks parity."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipelines", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--rows", type=int, default=None, help="flights to keep (default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="where caches go (default: temp dir)")
    parser.add_argument("--knn", action="store_true", help="also propose KNN models")
    parser.add_argument("--quick", action="store_true", help="small run that checks agreement")
    args = parser.parse_args()
    if args.quick:
        args.pipelines, args.rows, args.knn = 12, 2_000, True
    models = ("ridge", "linear", "knn") if args.knn else ("ridge", "linear")
    console = Console(width=max(Console().width, 120))
    started = time.perf_counter()
    X, y = flights_table(args.rows, seed=args.seed)
    batch = explore_candidates(args.pipelines, seed=args.seed, max_k=MAX_K, models=models)
    with tempfile.TemporaryDirectory(prefix="aml-bench-", dir=args.cache_dir) as scratch:
        table = Path(scratch) / "table.parquet"
        X.assign(**{TARGET: y}).to_parquet(table)
        work = Workload(table, batch, models, args.seed, Path(scratch))
        measured: dict[str, Measurement] = {}
        for variant in VARIANTS:
            console.print(f"running {variant} ...")
            measured[variant] = _in_fresh_process(variant, work)
        batch2 = measured["ours warm"].batch
        assert batch2 is not None
        sklearn_batch2 = (
            _in_fresh_process("B0", replace(work, batch=batch2)) if args.quick else None
        )
    prefixes = {c.prefix for c in batch}
    title = (
        f"{args.pipelines} pipelines, {len(X):,} rows x {X.shape[1]} columns "
        f"({len(CATEGORICAL)} categorical), {CV}-fold CV; batch 2 keeps the preprocessing "
        f"of batch 1 in {sum(c.prefix in prefixes for c in batch2)}/{len(batch2)} pipelines"
    )
    console.print(_table(measured, title))
    worst = _report_parity(console, measured, sklearn_batch2)
    _report_goals(console, measured)
    console.print(f"total {time.perf_counter() - started:.1f} s")
    if worst > TOLERANCE:
        raise SystemExit(f"score mismatch: {worst:.3g} > {TOLERANCE:g}")


def _reference(variant: str, measured: dict[str, Measurement]) -> Scores:
    m = measured[variant]
    return m.reference if m.reference is not None else measured["B0"].scores


def _table(measured: dict[str, Measurement], title: str) -> Table:
    b0 = measured["B0"].seconds
    best = min(measured["B1"].seconds, measured["B2"].seconds)
    table = Table(title=title)
    columns = ("variant", "wall s", "peak RSS MiB", "ops executed", "cache hits")
    for column in (*columns, "vs B0", "vs best B1/B2", "max |Δscore|"):
        table.add_column(column, justify="right")
    for variant, m in measured.items():
        table.add_row(
            variant,
            f"{m.seconds:.2f}",
            f"{m.peak_mib:,.0f}",
            "-" if m.executed is None else f"{m.executed:,}",
            "-" if m.cache_hits is None else f"{m.cache_hits:,}",
            f"{b0 / m.seconds:.1f}x",
            f"{best / m.seconds:.1f}x",
            f"{difference(m.scores, _reference(variant, measured)):.1e}",
        )
    return table


def _report_parity(
    console: Console, measured: dict[str, Measurement], sklearn_batch2: Measurement | None
) -> float:
    """Prints how the references were chosen; returns the worst difference."""
    diffs = [difference(m.scores, _reference(v, measured)) for v, m in measured.items()]
    console.print(
        f"max |Δscore| is against B0 on batch 1; for ours warm against academy_ml on "
        f"batch 2 without a cache. Tolerance {TOLERANCE:g}."
    )
    if sklearn_batch2 is not None:
        diff = difference(measured["ours warm"].scores, sklearn_batch2.scores)
        diffs.append(diff)
        console.print(f"batch 2, ours warm against scikit-learn (B0): max |Δscore| {diff:.1e}")
    return max(diffs)


def _report_goals(console: Console, measured: dict[str, Measurement]) -> None:
    b0, cold, warm = measured["B0"], measured["ours cold"], measured["ours warm"]
    best = min(measured["B1"].seconds, measured["B2"].seconds)
    vs_b0, vs_best = b0.seconds / cold.seconds, best / cold.seconds
    warm_gain, rss = cold.seconds / warm.seconds, cold.peak_mib / b0.peak_mib
    goals = [
        ("ours cold >= 20x B0", vs_b0, vs_b0 >= 20),
        ("ours cold >= 5x best of B1/B2", vs_best, vs_best >= 5),
        ("ours warm >= 3x ours cold", warm_gain, warm_gain >= 3),
        ("ours cold peak RSS <= 1.5x B0's", rss, rss <= 1.5),
    ]
    for name, achieved, met in goals:
        verdict = "[green]met[/]" if met else "[red]not met[/]"
        console.print(f"{name}: {achieved:.2f}x, {verdict}")


if __name__ == "__main__":
    main()
