"""A foreign-step worker process: fits and scores one fold at a time for its parent.

Started by :mod:`academy_ml.engine.foreign_pool` as ``python -m
academy_ml.engine.foreign_worker TASK_FD RESULT_FD``. It reads task frames
from TASK_FD and answers each with one msgpack frame on RESULT_FD:
``{"id": i, "score": float}`` or ``{"id": i, "error": str, "kind": "step" |
"load"}``. A task frame is msgpack ``[id, threads, sys_path, body]`` where
``body`` is a pickle the parent made of its own estimators (trusted data);
the parent never unpickles anything this process sends. Fold matrices are
not in the frame: the task names ``.npy`` files the parent wrote once, which
are memory-mapped copy-on-write here, so every task on a matrix shares its
pages.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any

import msgpack
import numpy as np
from sklearn.utils import _safe_indexing

from academy_ml.engine.budgets import limited
from academy_ml.engine.fallback import StepFailure, fit_and_score

__all__ = ["load_shared", "main"]

#: Run-level inputs (the user's X, y) kept loaded between tasks.
_KEPT = 4

#: Seconds between checks that the parent is still alive.
_ORPHAN_CHECK_S = 1.0


def load_shared(path: str) -> Any:
    """A value the parent shared: ``.npy`` memory-mapped copy-on-write, else our own pickle."""
    if path.endswith(".npy"):
        return np.load(path, mmap_mode="c", allow_pickle=False)
    with open(path, "rb") as handle:
        return pickle.load(handle)  # written by our parent into its private directory


class _Kept:
    """The last few run-level inputs, so a run's tasks load X and y once per worker."""

    def __init__(self) -> None:
        self.values: OrderedDict[str, Any] = OrderedDict()

    def get(self, path: str) -> Any:
        if path not in self.values:
            self.values[path] = load_shared(path)
            while len(self.values) > _KEPT:
                self.values.popitem(last=False)
        return self.values[path]


def _serve(body: bytes, threads: int, kept: _Kept) -> dict[str, Any]:
    try:
        task = pickle.loads(body)  # our parent's own pickle (trusted)
        y = kept.get(task["y"])
        train, test = task["train"], task["test"]
        if task["x_test"] is None:
            frame = kept.get(task["x_train"])
            x_train, x_test = _safe_indexing(frame, train), _safe_indexing(frame, test)
        else:
            x_train, x_test = load_shared(task["x_train"]), load_shared(task["x_test"])
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "kind": "load"}
    try:
        with limited(threads):
            score = fit_and_score(
                task["steps"], x_train, y[train], x_test, y[test], task["scoring"]
            )
    except StepFailure as exc:
        return {"error": str(exc), "kind": "step"}
    return {"score": float(score)}


def _exit_when_orphaned(parent: int) -> None:
    """Exits if the parent dies while a long fit runs (idle workers see EOF instead)."""
    while True:
        threading.Event().wait(_ORPHAN_CHECK_S)
        if os.getppid() != parent:
            os._exit(1)


def main(argv: list[str]) -> int:
    """Serves tasks until the parent closes the task pipe."""
    # Ctrl-C goes to the whole process group: the parent decides, and kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    tasks = Connection(int(argv[1]), writable=False)
    results = Connection(int(argv[2]), readable=False)
    kept = _Kept()
    while True:
        try:
            frame = tasks.recv_bytes()
        except EOFError:
            return 0
        task_id, threads, path, body = msgpack.unpackb(frame)
        if path != sys.path:
            sys.path[:] = path
        reply = _serve(body, threads, kept)
        reply["id"] = task_id
        results.send_bytes(msgpack.packb(reply))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
