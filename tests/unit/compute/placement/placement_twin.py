"""An in-process twin of the endpoint side, for the placer's unit tests.

Task functions here take a real :class:`BatchRequest`'s bytes and return a
:class:`BatchResult`'s bytes without running a plan. What each endpoint does
is set per endpoint name in :data:`BEHAVIOUR`: a :class:`LocalEndpoint`'s
threads are named after it, so a task knows where it runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

from academy_ml.compute.tasks import BatchRequest, BatchResult
from academy_ml.exceptions import DataError

#: endpoint name -> "ok" (default), "fail", "hang" (1.5 s, then answer), "bad_data"
BEHAVIOUR: dict[str, str] = {}
#: endpoint name -> plan keys it ran (whatever happened next)
RAN: dict[str, list[str]] = {}
#: endpoint name -> datasets pushed to it
PUSHED: Counter[tuple[str, str]] = Counter()
_LOCK = threading.Lock()


def reset() -> None:
    BEHAVIOUR.clear()
    RAN.clear()
    PUSHED.clear()


def _endpoint() -> str:
    return threading.current_thread().name.rsplit("_", 1)[0]


def run(payload: bytes) -> bytes:
    """The twin of ``run_batch``."""
    request = BatchRequest.from_bytes(payload)
    where = _endpoint()
    with _LOCK:
        RAN.setdefault(where, []).append(request.plan_key)
    behaviour = BEHAVIOUR.get(where, "ok")
    if behaviour == "fail":
        raise ConnectionError(f"worker on {where} lost")
    if behaviour == "bad_data":
        raise DataError("NaN reached a model")
    if behaviour == "hang":
        time.sleep(1.5)
    return BatchResult(
        plan_key=request.plan_key,
        host=where,
        pid=os.getpid(),
        results=[],
        executed=len(request.node_keys),
        cache_hits=0,
        seconds=0.0,
    ).to_bytes()


def put(data: bytes) -> str:
    """The twin of ``put_dataset``: the payload is the fingerprint itself."""
    fingerprint = data.decode()
    with _LOCK:
        PUSHED[(_endpoint(), fingerprint)] += 1
    return fingerprint


def pid(payload: bytes) -> bytes:
    """This worker's pid and ACADEMY_ML_CACHE_DIR, for process endpoints."""
    return f"{os.getpid()} {os.environ.get('ACADEMY_ML_CACHE_DIR', '-')}".encode() + payload
