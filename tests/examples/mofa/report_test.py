"""Round summaries, the rich table and the PNG plot of examples/mofa."""

from __future__ import annotations

from pathlib import Path

import pytest
from mofa.report import ResultRow, RoundSummary, plot, render_table, rounds
from rich.console import Console


def row(
    order: int,
    uptake: float | None,
    *,
    version: int = 0,
    stable: bool = True,
    valid: bool = True,
) -> ResultRow:
    return ResultRow(
        order=order,
        candidate_id=f"c{order}",
        model_version=version,
        uptake=uptake,
        stable=stable,
        valid=valid,
    )


def sample_rows() -> list[ResultRow]:
    return [
        row(0, 0.5),
        row(1, None, stable=False),
        row(2, 1.5, version=1),
        row(3, None, stable=False, valid=False),
        # Round 2: lower uptakes than round 1, so "best so far" must hold.
        row(4, 0.2, version=1),
        row(5, 1.2, version=2),
        row(6, None, stable=False),
        row(7, 0.1, version=1),
        # Last, partial round: no uptake at all.
        row(8, None, version=3, stable=False),
    ]


def test_rounds_arithmetic() -> None:
    first, second, last = rounds(sample_rows(), round_size=4)

    assert (first.index, first.model_version, first.n) == (1, 1, 4)
    assert first.stable_share == pytest.approx(0.5)
    assert first.valid_share == pytest.approx(0.75)
    assert first.mean_uptake == pytest.approx(1.0)
    assert first.best_uptake_so_far == pytest.approx(1.5)
    assert first.count_above_1 == 1

    assert (second.index, second.model_version, second.n) == (2, 2, 4)
    assert second.stable_share == pytest.approx(0.75)
    assert second.mean_uptake == pytest.approx(0.5)
    assert second.best_uptake_so_far == pytest.approx(1.5)
    assert second.count_above_1 == 1

    assert (last.index, last.model_version, last.n) == (3, 3, 1)
    assert last.stable_share == 0.0
    assert last.mean_uptake is None
    assert last.best_uptake_so_far == pytest.approx(1.5)
    assert last.count_above_1 == 0


def test_rounds_follow_completion_order() -> None:
    rows = sample_rows()
    assert rounds(list(reversed(rows)), 4) == rounds(rows, 4)


def test_best_never_decreases() -> None:
    uptakes = [0.3, None, 2.0, 0.1, None, 0.4, 1.1, 0.0, 2.5, 0.2, None]
    rows = [row(i, u) for i, u in enumerate(uptakes)]
    best = [s.best_uptake_so_far for s in rounds(rows, 2)]
    assert best[0] == pytest.approx(0.3)
    values = [b for b in best if b is not None]
    assert len(values) == len(best)
    assert values == sorted(values)
    assert values[-1] == pytest.approx(2.5)


def test_best_is_none_before_any_uptake() -> None:
    rows = [row(0, None), row(1, None), row(2, 0.7)]
    assert [s.best_uptake_so_far for s in rounds(rows, 2)] == [None, 0.7]


def test_rounds_edge_cases() -> None:
    assert rounds([], 4) == []
    with pytest.raises(ValueError, match="round_size"):
        rounds(sample_rows(), 0)


def test_table_has_the_columns() -> None:
    summaries = rounds(sample_rows(), 4)
    table = render_table(summaries, "retrain")
    headers = [str(c.header) for c in table.columns]
    assert headers == [
        "Round",
        "Model",
        "N",
        "Valid",
        "Stable",
        "Mean uptake",
        "Best so far",
        "> 1 mol/kg",
    ]
    assert table.row_count == 3
    assert table.title == "retrain"
    console = Console(width=120, record=True)
    console.print(table)
    text = console.export_text()
    assert "1.500" in text
    assert "50%" in text


def test_plot_writes_a_png(tmp_path: Path) -> None:
    rows = sample_rows()
    runs: dict[str, list[RoundSummary]] = {
        "retrain": rounds(rows, 4),
        "no-retrain": rounds(rows[:6], 3),
    }
    path = tmp_path / "plots" / "mofa.png"
    plot(runs, path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000


def test_plot_of_an_empty_run(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    plot({"retrain": []}, path)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
