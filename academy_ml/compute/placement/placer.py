"""The placer: one task per batch, on the endpoint whose cache holds most of it.

For each request the placer ranks the endpoints (policy ``"affinity"``):

1. cache affinity: how many of the request's plan nodes the affinity store
   records at each endpoint (most first; nodes every endpoint holds cancel
   out);
2. load: fewest tasks in flight;
3. the order the endpoints were given in.

Policy ``"round_robin"`` rotates through the endpoints instead (for
comparison). A dataset is pushed to an endpoint (``put_dataset`` task) the
first time a request needs it there, read from the client's dataset store
(where :func:`~academy_ml.compute.tasks.make_request` put it); afterwards
requests carry only its fingerprint.

When an attempt fails (worker or manager lost, endpoint unreachable, no
answer within ``timeout_s``) the request is resubmitted to the next endpoint
in its ranking, up to ``attempts`` attempts in all. Errors the task raised
on purpose (:class:`~academy_ml.exceptions.AcademyMLError`: a bad plan, bad
data) fail the request at once: another endpoint would raise them too.
Every attempt ends in an :class:`Outcome`. Tasks are idempotent, keyed by
plan hash: a request whose plan is already in flight joins it, and a late
result of an attempt given up on is discarded (outcome ``"duplicate"``), so
every request gets exactly one result.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from academy_ml.compute.placement.affinity import AffinityStore, InMemoryAffinity
from academy_ml.compute.placement.endpoints import RUN_BATCH, Endpoint, TaskFunction
from academy_ml.compute.placement.timers import Timers
from academy_ml.compute.tasks import BatchResult
from academy_ml.compute.tasks.datasets import DatasetStore
from academy_ml.exceptions import AcademyMLError

__all__ = [
    "PUT_DATASET",
    "Outcome",
    "PlacementError",
    "PlacementRequest",
    "PlacementResult",
    "Placer",
    "Policy",
]

#: Import path of the function that stores a dataset on an endpoint.
PUT_DATASET = "academy_ml.compute.tasks.put_dataset"

Policy = Literal["affinity", "round_robin"]
Status = Literal["ok", "failed", "timeout", "duplicate"]

logger = logging.getLogger(__name__)


class PlacementRequest(Protocol):
    """What the placer needs of a request (``academy_ml.compute.tasks.BatchRequest``)."""

    @property
    def plan_key(self) -> str:
        """Hash of the compiled plan: the task's identity."""
        ...

    @property
    def node_keys(self) -> list[str]:
        """Content keys of the plan's nodes (what an endpoint's cache may hold)."""
        ...

    @property
    def dataset(self) -> str:
        """Fingerprint of the dataset the plan runs on."""
        ...

    def to_bytes(self) -> bytes:
        """The request as the task function's payload."""
        ...


class PlacementResult(Protocol):
    """What the placer needs of a result (``academy_ml.compute.tasks.BatchResult``)."""

    @property
    def plan_key(self) -> str:
        """Hash of the plan this result is for."""
        ...


R = TypeVar("R", bound=PlacementResult)


@dataclass(frozen=True)
class Outcome:
    """How one attempt of one request ended.

    Attributes:
        plan_key: the request's plan hash.
        endpoint: where the attempt ran.
        attempt: 1 for the first attempt, 2 for the first resubmission...
        status: ``"ok"``; ``"failed"`` (an error); ``"timeout"`` (given up on
            after ``timeout_s``); ``"duplicate"`` (a result that arrived
            after the request already had one: discarded).
        error: the error's type and message, if any.
        seconds: from submission to the endpoint until the attempt ended.
    """

    plan_key: str
    endpoint: str
    attempt: int
    status: Status
    error: str | None
    seconds: float


class PlacementError(AcademyMLError, RuntimeError):
    """A request failed on every attempt, or with an error no endpoint can fix.

    Attributes:
        plan_key: the request's plan hash.
        outcomes: its attempts, in order.
    """

    def __init__(self, message: str, plan_key: str, outcomes: Sequence[Outcome]) -> None:
        super().__init__(message)
        self.plan_key = plan_key
        self.outcomes = list(outcomes)


@dataclass
class _Placement(Generic[R]):
    """The state of one request across its attempts."""

    request: PlacementRequest
    future: Future[R]
    tried: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Placer(Generic[R]):
    """Submits batch requests to endpoints: affinity, then load, with fail-over.

    Args:
        endpoints: the endpoints, in order of preference when all else ties.
        affinity: where ``node key -> endpoint`` records live (default: in
            memory).
        policy: ``"affinity"`` or ``"round_robin"``.
        attempts: most attempts per request (default: one per endpoint, and
            at least 2).
        timeout_s: give an attempt up after this many seconds and resubmit
            (default: wait as long as it takes). Count the time a first task
            waits for an endpoint's workers to start.
        run_fn: the task function (import path or callable) runs a request.
        put_fn: the task function that stores a dataset and returns its
            fingerprint.
        decode: turns the task function's bytes into a result (default:
            :meth:`BatchResult.from_bytes`).
        datasets: the client's dataset store, where requests' datasets are
            read to push them (default: the one ``make_request`` uses);
            ``None`` with ``push_datasets=False``.
        push_datasets: push each dataset to an endpoint before its first
            batch there; ``False`` when endpoints read the client's store
            (a shared filesystem).
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        affinity: AffinityStore | None = None,
        *,
        policy: Policy = "affinity",
        attempts: int | None = None,
        timeout_s: float | None = None,
        run_fn: str | TaskFunction = RUN_BATCH,
        put_fn: str | TaskFunction = PUT_DATASET,
        decode: Callable[[bytes], R] | None = None,
        datasets: DatasetStore | None = None,
        push_datasets: bool = True,
    ) -> None:
        names = [endpoint.name for endpoint in endpoints]
        if not names:
            raise ValueError("a placer needs at least one endpoint")
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique, got {names}")
        if attempts is not None and attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.endpoints: dict[str, Endpoint] = {e.name: e for e in endpoints}
        self.affinity: AffinityStore = affinity if affinity is not None else InMemoryAffinity()
        self.policy: Policy = policy
        self.attempts = attempts if attempts is not None else max(2, len(names))
        self.timeout_s = timeout_s
        self.run_fn = run_fn
        self.put_fn = put_fn
        self._decode: Callable[[bytes], R] = decode or BatchResult.from_bytes
        self.datasets = (datasets or DatasetStore()) if push_datasets else None
        self._lock = threading.Lock()
        self._outcomes: list[Outcome] = []
        self._in_flight: dict[str, Future[R]] = {}
        self._pushed: dict[tuple[str, str], Future[Any]] = {}
        self._turn = itertools.count()
        self._timers = Timers()

    # --- public API ------------------------------------------------------

    @property
    def outcomes(self) -> list[Outcome]:
        """Every attempt's outcome so far, in the order they ended."""
        with self._lock:
            return list(self._outcomes)

    def submit(self, request: PlacementRequest) -> Future[R]:
        """Places ``request``; the future holds its result.

        A request whose plan is already in flight gets that plan's future.
        The future fails with :class:`PlacementError` once no attempt is
        left.
        """
        with self._lock:
            running = self._in_flight.get(request.plan_key)
            if running is not None:
                return running
            future: Future[R] = Future()
            self._in_flight[request.plan_key] = future
        future.add_done_callback(lambda _: self._finished(request.plan_key))
        self._attempt(_Placement(request, future))
        return future

    def map(
        self, requests: Iterable[PlacementRequest], timeout: float | None = None
    ) -> Iterator[R]:
        """Submits every request, then yields their results in order."""
        futures = [self.submit(request) for request in requests]
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in futures:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            yield future.result(remaining)

    def run_all(
        self, requests: Iterable[PlacementRequest], timeout: float | None = None
    ) -> list[R]:
        """Submits every request and waits for all results, in order."""
        return list(self.map(requests, timeout))

    def rank(self, request: PlacementRequest) -> list[Endpoint]:
        """The endpoints in the order this placer would try them for ``request``."""
        endpoints = list(self.endpoints.values())
        if self.policy == "round_robin":
            turn = next(self._turn) % len(endpoints)
            return endpoints[turn:] + endpoints[:turn]
        try:
            held = self.affinity.held(request.node_keys, list(self.endpoints))
        except Exception:  # records are a hint: place by load without them
            logger.warning("affinity lookup failed; placing by load", exc_info=True)
            held = dict.fromkeys(self.endpoints, 0)
        order = {name: index for index, name in enumerate(self.endpoints)}
        return sorted(endpoints, key=lambda e: (-held[e.name], e.in_flight, order[e.name]))

    def close(self) -> None:
        """Stops the timers, then closes every endpoint and the affinity store."""
        self._timers.close()
        for endpoint in self.endpoints.values():
            endpoint.close()
        self.affinity.close()

    def __enter__(self) -> Placer[R]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- attempts ----------------------------------------------------------

    def _finished(self, plan_key: str) -> None:
        with self._lock:
            self._in_flight.pop(plan_key, None)

    def _next_endpoint(self, placement: _Placement[R]) -> Endpoint:
        ranked = self.rank(placement.request)
        fresh = [e for e in ranked if e.name not in placement.tried]
        if fresh:
            return fresh[0]
        # every endpoint failed once: go round again, not to the last one first
        others = [e for e in ranked if e.name != placement.tried[-1]]
        return (others or ranked)[0]

    def _attempt(self, placement: _Placement[R]) -> None:
        endpoint = self._next_endpoint(placement)
        with placement.lock:
            placement.tried.append(endpoint.name)
            attempt = len(placement.tried)
        started = time.monotonic()
        try:
            pushed = self._push_dataset(endpoint, placement.request.dataset)
        except Exception as error:  # the endpoint refused the submission
            self._failed(placement, endpoint, attempt, started, "failed", error)
            return
        if pushed is None:
            self._run(placement, endpoint, attempt, started)
            return

        def after_push(done: Future[Any]) -> None:
            error = done.exception()
            if error is None and done.result() != placement.request.dataset:
                error = ValueError(f"{endpoint.name!r} stored the dataset as {done.result()!r}")
            if error is not None:
                with self._lock:
                    if self._pushed.get((endpoint.name, placement.request.dataset)) is done:
                        del self._pushed[(endpoint.name, placement.request.dataset)]
                self._failed(placement, endpoint, attempt, started, "failed", error)
            else:
                self._run(placement, endpoint, attempt, started)

        pushed.add_done_callback(after_push)

    def _push_dataset(self, endpoint: Endpoint, fingerprint: str) -> Future[Any] | None:
        """The push of ``fingerprint`` to ``endpoint``, started if needed."""
        if self.datasets is None:
            return None
        with self._lock:
            pushed = self._pushed.get((endpoint.name, fingerprint))
            if pushed is None:
                try:
                    data = self.datasets.path(fingerprint).read_bytes()
                except FileNotFoundError:
                    return None  # not the client's: the endpoint must have it
                pushed = endpoint.submit(self.put_fn, data)
                self._pushed[(endpoint.name, fingerprint)] = pushed
            return pushed

    def _run(
        self, placement: _Placement[R], endpoint: Endpoint, attempt: int, started: float
    ) -> None:
        try:
            task = endpoint.submit(self.run_fn, placement.request.to_bytes())
        except Exception as error:
            self._failed(placement, endpoint, attempt, started, "failed", error)
            return
        if self.timeout_s is not None:
            timer = self._timers.call_later(
                self.timeout_s,
                lambda: self._timed_out(placement, endpoint, attempt, started, task),
            )
            task.add_done_callback(lambda _: timer.cancel())
        task.add_done_callback(
            lambda done: self._completed(placement, endpoint, attempt, started, done)
        )

    def _timed_out(
        self,
        placement: _Placement[R],
        endpoint: Endpoint,
        attempt: int,
        started: float,
        task: Future[Any],
    ) -> None:
        if not task.done():
            error = TimeoutError(f"no result from {endpoint.name!r} after {self.timeout_s} s")
            self._failed(placement, endpoint, attempt, started, "timeout", error)

    def _completed(
        self,
        placement: _Placement[R],
        endpoint: Endpoint,
        attempt: int,
        started: float,
        task: Future[Any],
    ) -> None:
        error = task.exception()
        if error is not None:
            self._failed(placement, endpoint, attempt, started, "failed", error)
            return
        request = placement.request
        try:
            result = self._decode(task.result())
            if result.plan_key != request.plan_key:
                raise ValueError(f"result is for plan {result.plan_key}, not {request.plan_key}")
        except Exception as bad:
            self._failed(placement, endpoint, attempt, started, "failed", bad)
            return
        with placement.lock:
            first = not placement.future.done()
            self._record(
                placement, endpoint, attempt, started, "ok" if first else "duplicate", None
            )
            if first:
                # records first: whoever waits on the result places its next batch by them
                try:
                    self.affinity.record(request.node_keys, endpoint.name)
                except Exception:
                    logger.warning("affinity of %s not recorded", request.plan_key, exc_info=True)
                placement.future.set_result(result)

    def _failed(
        self,
        placement: _Placement[R],
        endpoint: Endpoint,
        attempt: int,
        started: float,
        status: Status,
        error: BaseException,
    ) -> None:
        with placement.lock:
            if placement.future.done() or attempt != len(placement.tried):
                # a later attempt is running or the request is settled: just note it
                self._record(placement, endpoint, attempt, started, status, error)
                return
            self._record(placement, endpoint, attempt, started, status, error)
            retry = attempt < self.attempts and not isinstance(error, AcademyMLError)
            if not retry:
                placement.future.set_exception(self._give_up(placement, error))
        if retry:
            self._attempt(placement)

    def _give_up(self, placement: _Placement[R], error: BaseException) -> PlacementError:
        key = placement.request.plan_key
        if isinstance(error, AcademyMLError):
            message = f"plan {key}: the task failed on {placement.tried[-1]!r}: {error}"
        else:
            message = f"plan {key}: every attempt failed ({', '.join(placement.tried)}): {error}"
        failure = PlacementError(message, key, placement.outcomes)
        failure.__cause__ = error
        return failure

    def _record(
        self,
        placement: _Placement[R],
        endpoint: Endpoint,
        attempt: int,
        started: float,
        status: Status,
        error: BaseException | None,
    ) -> None:
        outcome = Outcome(
            plan_key=placement.request.plan_key,
            endpoint=endpoint.name,
            attempt=attempt,
            status=status,
            error=None if error is None else f"{type(error).__name__}: {error}",
            seconds=time.monotonic() - started,
        )
        placement.outcomes.append(outcome)
        with self._lock:
            self._outcomes.append(outcome)
