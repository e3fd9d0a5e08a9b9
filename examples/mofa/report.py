"""Per-round summaries of a discovery run: a rich table and a PNG plot.

Results are grouped, in completion order, into rounds of a fixed number of
results; each round says which generator version produced it, how many of
its candidates were stable, and how the uptake evolved::

    summaries = rounds(rows, round_size=16)
    Console().print(render_table(summaries, "retrain"))
    plot({"retrain": summaries, "no-retrain": baseline}, Path("mofa.png"))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict
from rich.table import Table

__all__ = ["ABOVE", "ResultRow", "RoundSummary", "plot", "render_table", "rounds"]

#: Uptake (mol/kg) above which a result counts as a hit.
ABOVE = 1.0


class ResultRow(BaseModel):
    """One finished candidate.

    Attributes:
        order: Completion order (rows are grouped into rounds by it).
        candidate_id: The candidate's id.
        model_version: Version of the generator that proposed it.
        uptake: Estimated CO2 uptake (mol/kg), None when not estimated.
        stable: Whether it passed the stability check.
        valid: Whether its linker passed screening and assembly.
    """

    model_config = ConfigDict(frozen=True)

    order: int
    candidate_id: str
    model_version: int
    uptake: float | None
    stable: bool
    valid: bool


class RoundSummary(BaseModel):
    """One round of results.

    Attributes:
        index: Round number, from 1.
        model_version: Highest generator version among its results.
        n: Results in the round (the last round may be partial).
        valid_share: Valid results / n.
        stable_share: Stable results / n.
        mean_uptake: Mean uptake over its results that have one (None if none).
        best_uptake_so_far: Highest uptake up to and including this round
            (None before any); never decreases.
        count_above_1: Its results with uptake above :data:`ABOVE` mol/kg.
    """

    model_config = ConfigDict(frozen=True)

    index: int
    model_version: int
    n: int
    valid_share: float
    stable_share: float
    mean_uptake: float | None
    best_uptake_so_far: float | None
    count_above_1: int


def rounds(rows: Sequence[ResultRow], round_size: int) -> list[RoundSummary]:
    """Summarises consecutive blocks of ``round_size`` results.

    Args:
        rows: Finished candidates; taken in ``order`` order.
        round_size: Results per round; the last round holds the remainder.

    Returns:
        One summary per round, first round first.

    Raises:
        ValueError: If ``round_size`` < 1.
    """
    if round_size < 1:
        raise ValueError(f"round_size must be at least 1, got {round_size}")
    ordered = sorted(rows, key=lambda row: row.order)
    summaries: list[RoundSummary] = []
    best: float | None = None
    for start in range(0, len(ordered), round_size):
        block = ordered[start : start + round_size]
        uptakes = [row.uptake for row in block if row.uptake is not None]
        if uptakes:
            best = max(uptakes) if best is None else max(best, *uptakes)
        summaries.append(
            RoundSummary(
                index=len(summaries) + 1,
                model_version=max(row.model_version for row in block),
                n=len(block),
                valid_share=sum(row.valid for row in block) / len(block),
                stable_share=sum(row.stable for row in block) / len(block),
                mean_uptake=sum(uptakes) / len(uptakes) if uptakes else None,
                best_uptake_so_far=best,
                count_above_1=sum(1 for u in uptakes if u > ABOVE),
            )
        )
    return summaries


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_table(summaries: Sequence[RoundSummary], title: str) -> Table:
    """A rich table with one row per round.

    Args:
        summaries: Output of :func:`rounds`.
        title: Table title (e.g. the run's name).
    """
    table = Table(title=title)
    table.add_column("Round", justify="right")
    table.add_column("Model", justify="right")
    table.add_column("N", justify="right")
    table.add_column("Valid", justify="right")
    table.add_column("Stable", justify="right")
    table.add_column("Mean uptake", justify="right")
    table.add_column("Best so far", justify="right")
    table.add_column(f"> {ABOVE:g} mol/kg", justify="right")
    for s in summaries:
        table.add_row(
            str(s.index),
            str(s.model_version),
            str(s.n),
            f"{s.valid_share:.0%}",
            f"{s.stable_share:.0%}",
            _number(s.mean_uptake),
            _number(s.best_uptake_so_far),
            str(s.count_above_1),
        )
    return table


def plot(runs: Mapping[str, Sequence[RoundSummary]], path: Path) -> None:
    """Writes a PNG: best uptake so far, mean uptake and stable share per round.

    Args:
        runs: Round summaries by run name (e.g. ``"retrain"``, ``"no-retrain"``),
            one line each.
        path: Where to write the PNG (parent directories are created).
    """

    def value(v: float | None) -> float:
        return math.nan if v is None else v  # a gap in the line

    # A bare Figure on the Agg canvas: no pyplot global state, no display.
    figure = Figure(figsize=(12, 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 3, sharex=True)
    panels: tuple[tuple[str, Callable[[RoundSummary], float]], ...] = (
        ("Best uptake so far (mol/kg)", lambda s: value(s.best_uptake_so_far)),
        ("Mean uptake (mol/kg)", lambda s: value(s.mean_uptake)),
        ("Stable share", lambda s: s.stable_share),
    )
    for ax, (label, get) in zip(axes, panels, strict=True):
        for name, summaries in runs.items():
            xs = [s.index for s in summaries]
            ax.plot(xs, [get(s) for s in summaries], marker="o", markersize=3, label=name)
        ax.set_title(label)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[2].set_ylim(0.0, 1.05)
    if runs:
        axes[0].legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
