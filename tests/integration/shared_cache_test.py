"""Scenario: two processes on one node run overlapping batches on one cache, at once.

Both must finish with the scores an uncached run gives, and no entry on disk
may be damaged (both create the private directory and its checksum secret at
once): a third process then reads every score back.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import academy_ml as aml
from academy_ml.agents.search_space import explored_batch
from academy_ml.engine.cache import summarize

ROWS = 6_000
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import academy_ml as aml
    from academy_ml.agents.search_space import explored_batch

    cache_dir, go, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    X, y, pipelines = explored_batch(40, {rows}, seed=0)
    batches = [pipelines[seed * 10 + i * 5:][:20] for i in range(3)]
    cache = aml.Cache(cache_dir)
    while not go.exists():
        time.sleep(0.01)
    out = []
    for batch in batches:
        report = aml.run(aml.compile(batch, cv=5, X=X, y=y, scoring="r2"), cache=cache)
        out.append([r.fold_scores.tolist() for r in report.results])
    print(json.dumps(out))
    """
).format(rows=ROWS)


def test_two_processes_share_one_cache_directory_safely(tmp_path: Path) -> None:
    cache_dir, go = tmp_path / "cache", tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(cache_dir), str(go), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 1)
    ]
    time.sleep(1.0)
    go.touch()
    outputs = [child.communicate(timeout=240) for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err

    X, y, pipelines = explored_batch(40, ROWS, seed=0)
    expected = aml.run(aml.compile(pipelines, cv=5, X=X, y=y, scoring="r2"))
    by_pipeline = {i: r.fold_scores for i, r in enumerate(expected.results)}
    for seed, (out, _) in zip((0, 1), outputs, strict=True):
        for i, batch_scores in enumerate(json.loads(out)):
            first = seed * 10 + i * 5
            for j, scores in enumerate(batch_scores):
                np.testing.assert_allclose(scores, by_pipeline[first + j], rtol=0, atol=1e-12)

    # Both children created the directory at once: one private directory,
    # one secret (an entry sealed with another would have counted as corrupt).
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache_dir / "secret").stat().st_mode) == 0o600
    assert list((cache_dir / "tmp").iterdir()) == []
    summary = summarize(cache_dir)
    assert summary.totals.corrupt == 0
    assert summary.totals.io_errors == 0
    assert summary.totals.hits > 0, "the batches overlap, so entries were shared"
    # A third process reads every overlapping score back from disk.
    reader = aml.Cache(cache_dir)
    shared = pipelines[10:35]
    report = aml.run(aml.compile(shared, cv=5, X=X, y=y, scoring="r2"), cache=reader)
    assert report.executed == 0
    assert report.cache.corrupt == 0
    np.testing.assert_allclose(
        [r.fold_scores for r in report.results], [by_pipeline[i] for i in range(10, 35)]
    )
