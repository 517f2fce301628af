"""Independent calls side by side on plain threads, up to a number of jobs.

The scheduler (delegate runs as their inner runs finish) and the describe handshake
(every delegate at once) both need it.  Plain threads and two queues rather than
``concurrent.futures``: importing that (with ``logging``) costs more than scheduling a
whole plan of trivial delegates.  The calling thread waits in bounded steps, so SIGINT
and SIGTERM reach it promptly; ``on_interrupt`` then stops whatever the threads are
waiting on (delegate processes) before the threads are joined.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Generic, TypeVar, cast

Item = TypeVar("Item")
Value = TypeVar("Value")

WAIT_STEP = 0.2  # seconds between the calling thread's chances to take a signal


class Workers(Generic[Item, Value]):
    """Up to ``jobs`` threads applying ``function`` to submitted items.

    ``next_done`` hands back each finished item with its value or the exception it
    raised, in the order they finish.
    """

    def __init__(
        self, function: Callable[[Item], Value], jobs: int, on_interrupt: Callable[[], None]
    ) -> None:
        self._function = function
        self._jobs = max(1, jobs)
        self._on_interrupt = on_interrupt
        self._tasks: queue.SimpleQueue[tuple[Item] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[Item, Value | None, BaseException | None]] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self.pending = 0

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            (item,) = task
            try:
                self._done.put((item, self._function(item), None))
            except BaseException as error:  # handed to the calling thread
                self._done.put((item, None, error))

    def submit(self, item: Item) -> None:
        # Threads start as work arrives: a plan with two runs needs no eight threads.
        if len(self._threads) < min(self._jobs, self.pending + 1):
            thread = threading.Thread(
                target=self._work, daemon=True, name=f"bakeplan-worker-{len(self._threads)}"
            )
            thread.start()
            self._threads.append(thread)
        self.pending += 1
        self._tasks.put((item,))

    def next_done(self) -> tuple[Item, Value | None, BaseException | None]:
        """The next finished item; waits in bounded steps so signals get through."""
        while True:
            try:
                finished = self._done.get(timeout=WAIT_STEP)
            except queue.Empty:
                continue
            self.pending -= 1
            return finished

    def __enter__(self) -> Workers[Item, Value]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is not None:
            # Before waiting for the threads: stop what they are waiting on.
            self._on_interrupt()
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()


def thread_map(
    function: Callable[[Item], Value],
    items: Sequence[Item],
    jobs: int,
    on_interrupt: Callable[[], None],
) -> list[Value]:
    """``function`` over ``items``, side by side, results in item order.

    One job or one item runs in the calling thread, as pre-commit's mapper degrades to
    ``map``.  The first exception a call raised is raised here once all have finished.
    """
    if jobs <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    found: dict[int, Value | None] = {}
    errors: list[BaseException] = []
    with Workers[int, Value](lambda i: function(items[i]), jobs, on_interrupt) as workers:
        for index in range(len(items)):
            workers.submit(index)
        while workers.pending:
            index, value, error = workers.next_done()
            if error is not None:
                errors.append(error)
            else:
                found[index] = value
    if errors:
        raise errors[0]
    # Without an error every call returned its value (which may itself be None).
    return cast("list[Value]", [found[i] for i in range(len(items))])
