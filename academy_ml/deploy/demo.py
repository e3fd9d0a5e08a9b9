"""Pipeline-search demo: a generated batch of pipelines, evaluated as one plan.

Run with ``academy-ml demo`` or ``python -m academy_ml.deploy.demo`` (``make demo`` runs
the MOFA loop instead).
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

import academy_ml as aml
from academy_ml.agents.search_space import explored_batch

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The arguments of ``academy-ml demo``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=64)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=10)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Evaluates an explored batch and prints a leaderboard and op counts."""
    args = build_parser().parse_args(argv)
    console = Console()
    X, y, pipelines = explored_batch(args.pipelines, args.rows, seed=args.seed)
    categorical = [c for c in X.columns if c.startswith("cat")]
    console.print(
        f"[bold]{len(pipelines)} pipelines[/] on {args.rows:,} rows x {X.shape[1]} columns "
        f"({len(categorical)} categorical, with missing values), {args.cv}-fold CV"
    )
    plan = aml.compile(pipelines, cv=args.cv, X=X, y=y, scoring="r2")
    start = time.perf_counter()
    results = aml.evaluate(pipelines, X, y, cv=args.cv, scoring="r2")
    elapsed = time.perf_counter() - start
    board = Table(title="Leaderboard (mean R^2 over folds)")
    for column in ("rank", "mean r2", "std", "pipeline", "backends"):
        board.add_column(column)
    ranked = sorted(results, key=lambda r: -r.mean_score if r.ok else float("inf"))
    for rank, r in enumerate(ranked[: args.top], 1):
        steps = " -> ".join(f"{name}:{type(step).__name__}" for name, step in r.pipeline.steps)
        backends = ",".join(sorted(set(r.backends.values())))
        board.add_row(
            str(rank), f"{r.mean_score:.4f}", f"{r.fold_scores.std():.4f}", steps, backends
        )
    console.print(board)
    failed = [r for r in results if not r.ok]
    for r in failed:
        console.print(f"[red]pipeline {r.index} failed:[/] {r.error}")
    s = plan.stats
    console.print(
        f"ops: naive {s.naive_ops:,} -> unique {s.unique_ops:,} "
        f"({s.dedup_ratio:.1f}x fewer); {s.shared_grams} shared Gram matrices serve "
        f"{s.linear_solves} linear solves; evaluated in {elapsed:.2f} s"
    )


if __name__ == "__main__":
    main()
