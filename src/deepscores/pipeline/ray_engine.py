"""The Ray engine: each score is one Ray task running :func:`process_score` on some node of a cluster.

Like the local engine it delivers one :class:`ScoreResult` per task: errors come back as results, a
worker that dies (the native engraver aborts, a node is lost) is retried by Ray a few times and then
recorded as ``crash``, and a task past the timeout is force-cancelled and recorded as ``timeout``.
Workers write the page files themselves, so the output folder must be the same shared path on every
node (see docs/scale.md).
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import ray
import ray.exceptions

from deepscores.pipeline.tasks import (
    MAX_CRASH_RETRIES, ScoreResult, ScoreTask, crash_result, keep_page_memory, process_score,
)


#: Retries after a system failure (dead worker or node). An engraver abort is deterministic, so
#: more tries only cost time; one or two cover a node that was lost mid-task.
log = logging.getLogger("deepscores.pipeline")
DEFAULT_MAX_RETRIES = MAX_CRASH_RETRIES
#: Tasks kept submitted per cluster CPU: enough that a CPU never waits for the driver, few enough
#: that a stop (``--pages N``) or Ctrl-C wastes little and the task queue stays small.
IN_FLIGHT_PER_CPU = 2
#: How often the cluster's CPU count is read again (nodes may join or leave during a long run).
_RESIZE_EVERY_S = 30.0

_baseline_address_space: int | None = None


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _limit_task_memory(megabytes: int | None) -> None:
    """Cap the address space a score may add to this Ray worker.

    ``tasks.limit_memory`` caps the whole address space, which suits the local engine's bare
    workers; a Ray worker already maps the object store (measured here: 8.6 GB of address space
    before any task on a 2-CPU node), so the same absolute cap would fail every allocation. The
    cap is therefore taken on top of the worker's size at its first task. Only the soft limit is
    set, so a later task in the same (reused) worker can set it again.
    """
    global _baseline_address_space
    if not megabytes:
        return
    if _baseline_address_space is None:
        _baseline_address_space = _address_space_bytes()
        if _baseline_address_space is None:
            return  # no /proc (not Linux): run without a cap rather than guess one
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _baseline_address_space + megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _score_task(task: ScoreTask, cwd: str) -> dict:
    """What one Ray task runs. Returns the result as JSON data, as the local engine's pipe does."""
    # Score paths and the output folder may be relative to where `deepscores generate` was started;
    # Ray starts workers elsewhere, so they work from the driver's folder (same path on every node).
    if os.getcwd() != cwd:
        os.chdir(cwd)
    _limit_task_memory(task.memory_limit_mb)
    keep_page_memory()
    return process_score(task).to_json()


def _warm_up() -> int:
    """A no-op task: by the time it runs, its worker has imported the engraver and the rest."""
    return os.getpid()


@dataclass
class _Flight:
    task: ScoreTask
    started: float | None = None   # when a cluster CPU is presumed to have taken it (timeout clock)
    cancelled: bool = False        # cancelled by us: its outcome is already decided


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _failure(task: ScoreTask, exc: Exception, max_retries: int) -> ScoreResult:
    """The result of a task whose worker never delivered one."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        # _score_task itself raised (process_score turns every Exception into a result, so this is
        # a BaseException such as SystemExit); name the cause, not Ray's wrapper.
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
        reason = f"{type(cause).__name__}: {_one_line(cause)}"
        return ScoreResult(task.source, "crash", error=f"{task.source}: the Ray task failed ({reason})")
    kind = type(exc).__name__
    if isinstance(exc, ray.exceptions.OutOfMemoryError):
        detail = "killed by Ray's memory monitor (the node ran out of memory)"
    elif isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                          ray.exceptions.LocalRayletDiedError)):
        # The local engine's words, so that a crash leaves the same manifest line on either engine.
        log.warning("%s: the engraver process died (%s)", task.source, kind)
        return crash_result(task.source, max_retries + 1)
    else:
        detail = "the Ray task was lost"
    return ScoreResult(task.source, "crash",
                       error=f"{task.source}: {detail} ({kind}; tried {max_retries + 1} times)")


class RayEngine:
    """Runs score tasks as Ray tasks, on a cluster at ``address`` or on a local one it starts."""

    name = "ray"

    def __init__(self, workers: int, timeout_s: float | None = None, memory_limit_mb: int | None = None,
                 address: str | None = None, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.workers = max(1, workers)
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.address = address
        self.max_retries = max(0, max_retries)

    def _connect(self) -> bool:
        """Join or start a cluster; True when this engine owns the connection and must shut it down."""
        if ray.is_initialized():
            return False  # the caller (a test, a notebook) already connected: use that cluster
        # Workers' own output and Ray's info lines would tear the progress bar; Ray's errors stay.
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        if self.address is None:
            ray.init(num_cpus=self.workers, include_dashboard=False, **quiet)
        else:
            ray.init(address=self.address, **quiet)
        return True

    def run(self, tasks: Iterable[ScoreTask], on_result: Callable[[ScoreResult], bool]) -> None:
        """Run every task; ``on_result`` gets each result as it comes and returns False to stop early."""
        owned = self._connect()
        try:
            self._run(iter(tasks), on_result)
        finally:
            if owned:
                ray.shutdown()  # stops a cluster started here; only disconnects from an existing one

    def _run(self, pending: Iterator[ScoreTask], on_result: Callable[[ScoreResult], bool]) -> None:
        remote = ray.remote(_score_task).options(
            num_cpus=1, max_retries=self.max_retries, retry_exceptions=False, name="deepscores.score")
        cwd = os.getcwd()
        flights: dict[ray.ObjectRef, _Flight] = {}  # insertion order = submission order
        cpus, resized = _cluster_cpus(), time.monotonic()
        # Ray starts workers on demand; starting one and importing music21 and Verovio takes
        # seconds, which must not count against the first scores' timeout.
        ray.get([ray.remote(_warm_up).options(num_cpus=1).remote() for _ in range(cpus)])
        exhausted = stopping = False
        while True:
            if time.monotonic() - resized > _RESIZE_EVERY_S:
                cpus, resized = _cluster_cpus(), time.monotonic()
            live = [ref for ref, f in flights.items() if not f.cancelled]
            # Submit lazily: a plan of 300,000 scores never becomes 300,000 queued tasks.
            while not exhausted and not stopping and len(live) < IN_FLIGHT_PER_CPU * cpus:
                task = next(pending, None)
                if task is None:
                    exhausted = True
                    break
                ref = remote.remote(task, cwd)
                flights[ref] = _Flight(task)
                live.append(ref)
            if not flights:
                return
            self._start_clocks(live, flights, cpus)
            ready, _ = ray.wait(list(flights), num_returns=1, timeout=self._wait_s(flights))
            if ready:
                # Take everything that is ready now, not just the one ray.wait returned.
                ready, _ = ray.wait(list(flights), num_returns=len(flights), timeout=0)
            for ref in ready:
                flight = flights.pop(ref)
                result = self._collect(ref, flight)
                if result is not None and not on_result(result):
                    stopping = True
            for ref, flight in flights.items():
                if self._expired(flight):
                    # force=True kills the worker process: the engraver may be stuck in native code.
                    ray.cancel(ref, force=True)
                    flight.cancelled = True
                    if not on_result(ScoreResult(flight.task.source, "timeout",
                                                 error=f"{flight.task.source}: no result after {self.timeout_s:g} s")):
                        stopping = True
            if stopping:
                # Tasks that have not started are no longer needed. Their refs stay in `flights`
                # until they resolve, so no worker can still be writing page files when run.py
                # goes on to finalize the dataset.
                for ref, flight in flights.items():
                    if flight.started is None and not flight.cancelled:
                        ray.cancel(ref)
                        flight.cancelled = True

    @staticmethod
    def _start_clocks(live: list, flights: dict, cpus: int) -> None:
        # Ray does not tell the driver when a task starts. With the queue served in submission
        # order, the oldest waiting task starts when a CPU frees up, so its clock starts then; a
        # task Ray starts out of order gets somewhat less than the full timeout.
        running = sum(1 for ref in live if flights[ref].started is not None)
        now = time.monotonic()
        for ref in live:
            if running >= cpus:
                break
            if flights[ref].started is None:
                flights[ref].started = now
                running += 1

    def _expired(self, flight: _Flight) -> bool:
        return (self.timeout_s is not None and not flight.cancelled and flight.started is not None
                and time.monotonic() - flight.started >= self.timeout_s)

    def _wait_s(self, flights: dict) -> float | None:
        if self.timeout_s is None:
            return None
        deadlines = [f.started + self.timeout_s for f in flights.values() if f.started is not None and not f.cancelled]
        if not deadlines:
            return None if all(f.cancelled for f in flights.values()) else 1.0
        return max(0.0, min(deadlines) - time.monotonic())

    def _collect(self, ref: ray.ObjectRef, flight: _Flight) -> ScoreResult | None:
        """The task's result; None when we cancelled it (its outcome was reported, or is not needed)."""
        try:
            value = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            if flight.cancelled:
                return None
            return ScoreResult(flight.task.source, "crash", error=f"{flight.task.source}: the Ray task was cancelled")
        except ray.exceptions.RayError as exc:
            if flight.cancelled:
                return None  # killed by our cancel: the worker's death is the cancel's doing
            return _failure(flight.task, exc, self.max_retries)
        # A cancel can lose the race with the task's end. A timed-out task was already reported,
        # and a task cancelled at a stop is not needed, so a late result is dropped either way.
        return None if flight.cancelled else ScoreResult.from_json(value)


def _cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
