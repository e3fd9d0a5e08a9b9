"""``python -m mofa``: the discovery loop with retraining and without, side by side.

Each run launches the deployment (``configs/local.toml`` by default: Academy's
in-process exchange, a local Parsl endpoint; ``--exchange redis://...``
switches to ``configs/redis.toml``, one process per agent), waits until the
planner's budget strategy stops it, then prints a per-round table. At the
end it writes, under the output directory: ``uptake.png`` (best and mean
uptake, stable share per round, one line per run), ``results-<run>.jsonl``
(every result), and ``structures/<run>/*.cif`` for the best stable
candidates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from academy_ml.agents.knowledge import InMemoryKnowledgeBase, KnowledgeBase, RedisKnowledgeBase
from academy_ml.deploy.launch import load_deployment, up
from academy_ml.deploy.launch.console import progress_bar
from mofa.cif import write_cif
from mofa.report import ResultRow, RoundSummary, plot, render_table, rounds
from mofa.simulate import build_framework

__all__ = ["RunResult", "main", "run_loop"]

REPOSITORY = Path(__file__).resolve().parents[2]
#: How many of the best stable candidates get a structure file.
TOP_STRUCTURES = 5
#: Rounds whose stable share is compared ("the last rounds").
LAST_ROUNDS = 3


@dataclass
class RunResult:
    """One run of the loop."""

    label: str
    rows: list[ResultRow]
    summaries: list[RoundSummary]
    elapsed_s: float
    reason: str
    model_versions: list[int]
    retrain_firings: int

    @property
    def simulations_per_s(self) -> float:
        """Results per second of the whole run (start-up included)."""
        return len(self.rows) / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def best_uptake(self) -> float:
        """The best uptake of a stable candidate (0 when none)."""
        return max((r.uptake for r in self.rows if r.uptake is not None), default=0.0)

    @property
    def late_stable_share(self) -> float:
        """Stable share over the last rounds."""
        late = self.summaries[-LAST_ROUNDS:]
        total = sum(s.n for s in late)
        return sum(s.stable_share * s.n for s in late) / total if total else 0.0


def run_loop(
    *,
    seed: int,
    retrain: bool,
    budget: int,
    round_size: int,
    exchange: str | None = None,
    endpoint: str | None = None,
    extra: Sequence[str] = (),
    console: Console | None = None,
) -> tuple[RunResult, dict[str, dict[str, Any]]]:
    """Run the loop once; return its result and the payloads of its candidates by id."""
    label = f"{'retrain' if retrain else 'no-retrain'}-s{seed}"
    config = REPOSITORY / "configs" / ("local.toml" if exchange is None else "redis.toml")
    name = f"mofa-{label}-{int(time.time())}"
    overrides = [
        f"deployment.name={name}",
        f"generation.generator={{ class = 'mofa.genes.LinkerGenerator', seed = {seed} }}",
        f"planner.retrain={str(retrain).lower()}",
        f"planner.budget={budget}",
        f"planner.seed={seed}",
        *([f"deployment.exchange={exchange}"] if exchange else []),
        *([f"analysis.placement.endpoint={endpoint}"] if endpoint else []),
        *extra,
    ]
    deployment = load_deployment(config, overrides)
    memory = InMemoryKnowledgeBase()
    with progress_bar(deployment, console or Console(quiet=True)) as show:
        outcome = asyncio.run(
            up(
                deployment,
                knowledge=memory,
                on_progress=show,
                log_dir=Path("runinfo") / name,
                timeout_s=900,
            )
        )
    url = deployment.knowledge_url
    kb: KnowledgeBase = memory if url is None else RedisKnowledgeBase(url, name)
    rows, payloads, versions, firings = asyncio.run(_collect(kb))
    result = RunResult(
        label=label,
        rows=rows,
        summaries=rounds(rows, round_size),
        elapsed_s=outcome.elapsed_s,
        reason=outcome.reason,
        model_versions=versions,
        retrain_firings=firings,
    )
    if console is not None:
        console.print(render_table(result.summaries, f"{label}: {outcome.reason}"))
    return result, payloads


async def _collect(
    kb: KnowledgeBase,
) -> tuple[list[ResultRow], dict[str, dict[str, Any]], list[int], int]:
    try:
        results = await kb.results()
        rows, payloads = [], {}
        for order, result in enumerate(results):
            candidate = await kb.candidate(result.candidate_id)
            if candidate is not None:
                payloads[result.candidate_id] = candidate.payload
            stable = result.flags.get("stable", False)
            rows.append(
                ResultRow(
                    order=order,
                    candidate_id=result.candidate_id,
                    model_version=result.model_version,
                    uptake=result.metrics.get("uptake") if stable else None,
                    stable=stable,
                    valid=result.flags.get("valid", False),
                )
            )
        versions = sorted({row.model_version for row in rows})
        firings = await kb.firings(agent="planner", strategy="retrain", limit=10_000)
        return rows, payloads, versions, sum(f.fired for f in firings)
    finally:
        await kb.close()


def write_outputs(
    out: Path, runs: Sequence[RunResult], payloads: dict[str, dict[str, dict[str, Any]]]
) -> None:
    """The plot, every result, and structure files of each run's best stable candidates."""
    out.mkdir(parents=True, exist_ok=True)
    plot({run.label: run.summaries for run in runs}, out / "uptake.png")
    for run in runs:
        with (out / f"results-{run.label}.jsonl").open("w") as file:
            for row in run.rows:
                record = {
                    **row.model_dump(),
                    "candidate": payloads[run.label].get(row.candidate_id),
                }
                file.write(json.dumps(record) + "\n")
        ranked = sorted(
            (r for r in run.rows if r.uptake is not None), key=lambda r: -(r.uptake or 0)
        )
        best, seen = [], set()
        for row in ranked:  # one structure per design (the generator proposes repeats)
            payload = payloads[run.label][row.candidate_id]
            design = (payload["smiles"], payload["genes"]["pillar"])
            if design not in seen:
                seen.add(design)
                best.append(row)
        for rank, row in enumerate(best[:TOP_STRUCTURES], 1):
            framework = build_framework(payloads[run.label][row.candidate_id])
            if framework is not None:
                name = f"{rank:02d}-{row.candidate_id}"
                (out / "structures" / run.label).mkdir(parents=True, exist_ok=True)
                write_cif(framework, out / "structures" / run.label / f"{name}.cif", name=name)


def comparison(runs: Sequence[RunResult]) -> Table:
    """Retrain vs no-retrain: best uptake, late stable share, throughput, model versions."""
    table = Table(
        "run", "results", "best uptake", f"stable, last {LAST_ROUNDS} rounds",
        "models", "retrains", "sims/s", title="retrain vs --no-retrain (uptake in mol/kg)",
    )  # fmt: skip
    for run in runs:
        table.add_row(
            run.label,
            str(len(run.rows)),
            f"{run.best_uptake:.3f}",
            f"{run.late_stable_share:.2f}",
            f"{run.model_versions[0]}..{run.model_versions[-1]}" if run.model_versions else "-",
            str(run.retrain_firings),
            f"{run.simulations_per_s:.2f}",
        )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m mofa``."""
    parser = argparse.ArgumentParser(prog="python -m mofa", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--budget", type=int, default=160, help="simulations per run")
    parser.add_argument("--round-size", type=int, default=16)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-retrain", action="store_true", help="only the run without retraining")
    mode.add_argument("--retrain-only", action="store_true", help="only the run with retraining")
    parser.add_argument("--exchange", help="redis:// URL: agents in processes over Redis")
    parser.add_argument("--endpoint", help="registry endpoint the simulations run on")
    parser.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    args = parser.parse_args(argv)
    console = Console()
    modes = [True] if args.retrain_only else [False] if args.no_retrain else [True, False]
    runs, payloads = [], {}
    for seed in args.seeds:
        for retrain in modes:
            result, found = run_loop(
                seed=seed,
                retrain=retrain,
                budget=args.budget,
                round_size=args.round_size,
                exchange=args.exchange,
                endpoint=args.endpoint,
                extra=args.set,
                console=console,
            )
            runs.append(result)
            payloads[result.label] = found
    console.print(comparison(runs))
    out = args.out or Path("mofa-output") / time.strftime("%Y%m%d-%H%M%S")
    write_outputs(out, runs, payloads)
    console.print(f"results, structures and uptake.png in {out.resolve()}")
    return 0 if all(run.reason == "done" for run in runs) else 1
