"""Pipeline search: academy_ml's engine against what users run today.

Same data, same explored pipelines, 5-fold CV. Every variant runs in a fresh
process (so peak RSS is its own) and reports wall time, peak RSS, ratio to
B0 and the largest fold-score difference from B0.

  B0  sequential scikit-learn cross_val_score per pipeline
  B2  joblib.Parallel(n_jobs=2) over pipelines
  ours             academy_ml.evaluate (one plan, CSE, Gram sharing, all cores)
  ours no-CSE      the same plan without common-subexpression elimination
  ours 1 thread    the same plan on one worker thread

Usage: python benchmarks/pipeline_search.py [--pipelines 64] [--rows 20000] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from rich.console import Console
from rich.table import Table

VARIANTS = ("B0", "B2", "ours", "ours no-CSE", "ours 1 thread")


def run_variant(variant: str, args: argparse.Namespace) -> tuple[float, float, np.ndarray, int]:
    """Runs one variant; returns (seconds, peak RSS MiB, fold scores, ops)."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import cross_val_score

    import academy_ml as aml
    from academy_ml.pipeline.generate import explored_batch

    X, y, pipelines = explored_batch(
        args.pipelines, args.rows, n_numeric=args.columns, seed=args.seed
    )
    ops = 0
    start = time.perf_counter()
    if variant == "B0":
        scores = [cross_val_score(p, X, y, cv=args.cv, scoring="r2") for p in pipelines]
    elif variant == "B2":
        scores = Parallel(n_jobs=2)(
            delayed(cross_val_score)(p, X, y, cv=args.cv, scoring="r2") for p in pipelines
        )
    else:
        options = aml.Options(cse=variant != "ours no-CSE")
        threads = 1 if variant == "ours 1 thread" else None
        results = aml.evaluate(
            pipelines, X, y, cv=args.cv, scoring="r2", threads=threads, options=options
        )
        bad = [r.error for r in results if not r.ok]
        if bad:
            raise RuntimeError(f"{len(bad)} pipelines failed, first: {bad[0]}")
        scores = [r.fold_scores for r in results]
        plan = aml.compile(pipelines, cv=args.cv, X=X, y=y, scoring="r2", options=options)
        ops = plan.stats.unique_ops
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return elapsed, peak, np.array(scores), ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=64)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--columns", type=int, default=16)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small run that checks agreement")
    args = parser.parse_args()
    if args.quick:
        args.pipelines, args.rows = 12, 2_000
    console = Console()
    measured: dict[str, tuple[float, float, np.ndarray, int]] = {}
    for variant in VARIANTS:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            measured[variant] = pool.submit(run_variant, variant, args).result()
    base_time, _, base_scores, _ = measured["B0"]
    table = Table(
        title=f"{args.pipelines} pipelines, {args.rows:,} rows x {args.columns + 2} columns, "
        f"{args.cv}-fold CV"
    )
    for col in ("variant", "wall s", "peak RSS MiB", "ops", "vs B0", "vs B2", "max |dscore|"):
        table.add_column(col, justify="right")
    worst = 0.0
    for variant, (secs, rss, scores, ops) in measured.items():
        diff = float(np.max(np.abs(scores - base_scores)))
        worst = max(worst, diff)
        table.add_row(
            variant,
            f"{secs:.2f}",
            f"{rss:.0f}",
            str(ops or "-"),
            f"{base_time / secs:.1f}x",
            f"{measured['B2'][0] / secs:.1f}x",
            f"{diff:.1e}",
        )
    console.print(table)
    if worst > 1e-3:
        raise SystemExit(f"score mismatch against B0: {worst:.3g}")


if __name__ == "__main__":
    main()
