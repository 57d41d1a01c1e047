"""The local engine: long-lived worker processes, one score task each at a time.

A worker that dies (a segfault or abort in the native engraver, the kernel's OOM killer) costs
exactly its one task, recorded as ``crash``; a task past the timeout has its worker killed and is
recorded as ``timeout``; either way a fresh worker takes its place and the run goes on.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

import logging

from deepscores.pipeline.tasks import (
    MAX_CRASH_RETRIES,
    ScoreResult,
    ScoreTask,
    crash_result,
    keep_page_memory,
    limit_memory,
    process_score,
)

log = logging.getLogger("deepscores.pipeline")


def _worker_main(conn: Connection, memory_limit_mb: int | None) -> None:
    # The parent handles Ctrl-C; a worker must not die of it mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(memory_limit_mb)
    keep_page_memory()
    frozen = False
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(process_score(task).to_json())
        if not frozen:
            # After the first score every module (music21, skia, scipy…) is imported: ~10⁵ long-lived
            # objects that each full garbage collection would walk again, ≈ 60 ms a time. Freezing moves
            # them out of the collector's sight; the per-page garbage is still collected.
            gc.freeze()
            frozen = True


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection
    task: ScoreTask | None = None
    started: float = 0.0


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class LocalEngine:
    """Runs score tasks on ``workers`` processes of this machine."""

    name = "local"

    def __init__(self, workers: int, timeout_s: float | None = None, memory_limit_mb: int | None = None,
                 max_retries: int = MAX_CRASH_RETRIES) -> None:
        self.workers = max(1, workers)
        self.max_retries = max(0, max_retries)
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(["deepscores.pipeline.tasks"])

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(child, self.memory_limit_mb), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    @staticmethod
    def _stop(worker: _Worker, kill: bool = False) -> None:
        if kill:
            worker.process.kill()
        else:
            try:
                worker.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()

    def run(self, tasks: Iterable[ScoreTask], on_result: Callable[[ScoreResult], bool]) -> None:
        """Run every task; ``on_result`` gets each result as it comes and returns False to stop early."""
        pending: Iterator[ScoreTask] = iter(tasks)
        retry: list[ScoreTask] = []  # tasks whose worker died, to be tried again on a fresh one
        attempts: dict[str, int] = {}
        pool = [self._start() for _ in range(self.workers)]
        exhausted = stopping = False
        try:
            while True:
                for worker in pool:
                    if worker.task is None and (retry or (not exhausted and not stopping)):
                        task = retry.pop() if retry else next(pending, None)
                        if task is None:
                            exhausted = True
                            continue
                        worker.task, worker.started = task, time.monotonic()
                        worker.conn.send(task)
                busy = [w for w in pool if w.task is not None]
                if not busy and not retry:
                    return
                timeout = None
                if self.timeout_s is not None:
                    now = time.monotonic()
                    timeout = max(0.0, min(w.started + self.timeout_s - now for w in busy))
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
                for i, worker in enumerate(pool):
                    if worker.task is None:
                        continue
                    task = worker.task
                    result = self._collect(worker, ready)
                    if result is None:
                        continue
                    if result.status in ("crash", "timeout"):
                        pool[i] = self._start()
                    else:
                        worker.task = None
                    if result.status == "crash":
                        attempts[task.source] = attempts.get(task.source, 0) + 1
                        log.warning("%s", result.error)
                        if attempts[task.source] <= self.max_retries:
                            retry.append(task)
                            continue
                        result = crash_result(task.source, attempts[task.source])
                    if not on_result(result):
                        stopping = True
        finally:
            for worker in pool:
                self._stop(worker, kill=worker.task is not None)

    def _collect(self, worker: _Worker, ready: set) -> ScoreResult | None:
        task = worker.task
        assert task is not None
        if worker.conn in ready or worker.process.sentinel in ready:
            try:
                if worker.conn.poll():
                    return ScoreResult.from_json(worker.conn.recv())
            except (EOFError, OSError):
                pass
            worker.process.join(timeout=5)
            reason = _describe_exit(worker.process.exitcode)
            self._stop(worker, kill=True)
            return ScoreResult(task.source, "crash", error=f"{task.source}: the engraver process died ({reason})")
        if self.timeout_s is not None and time.monotonic() - worker.started >= self.timeout_s:
            self._stop(worker, kill=True)
            return ScoreResult(task.source, "timeout", error=f"{task.source}: no result after {self.timeout_s:g} s")
        return None
