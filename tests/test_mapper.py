"""The mapper: calls side by side up to a number of jobs, serial in the calling thread
for one job or one item, results in item order, the first error raised once every call
has finished, threads started only as work arrives, and ``on_interrupt`` called before
the threads are joined when the calling thread stops."""

from __future__ import annotations

import threading

import pytest

from orchestrator.core.mapper import Workers, thread_map

# Long enough for any loaded machine; a call that waits this long means the test failed.
DEADLINE = 60.0


def never() -> None:
    raise AssertionError("on_interrupt called without an interrupt")


def test_results_come_in_item_order_whatever_order_the_calls_finish() -> None:
    # Each call waits for the one after it to finish: they finish last to first.
    finished = [threading.Event() for _ in range(4)]

    def call(index: int) -> int:
        if index + 1 < len(finished):
            assert finished[index + 1].wait(DEADLINE)
        finished[index].set()
        return index * 10

    assert thread_map(call, [0, 1, 2, 3], 4, never) == [0, 10, 20, 30]


def test_calls_run_side_by_side_up_to_the_jobs() -> None:
    # Every call waits until all four have started: this passes only if they overlap.
    barrier = threading.Barrier(4, timeout=DEADLINE)

    def together(index: int) -> int:
        barrier.wait()
        return index

    assert thread_map(together, [0, 1, 2, 3], 4, never) == [0, 1, 2, 3]
    # Never more at once than the jobs.
    lock = threading.Lock()
    now = [0, 0]  # running, most ever

    def counted(index: int) -> int:
        with lock:
            now[0] += 1
            now[1] = max(now)
        with lock:
            now[0] -= 1
        return index

    assert thread_map(counted, list(range(20)), 2, never) == list(range(20))
    assert now[1] <= 2


def test_one_job_or_one_item_runs_in_the_calling_thread() -> None:
    me = threading.get_ident()
    assert thread_map(lambda i: threading.get_ident(), [1, 2, 3], 1, never) == [me] * 3
    assert thread_map(lambda i: threading.get_ident(), [1], 8, never) == [me]
    assert thread_map(lambda i: i, [], 8, never) == []


def test_the_first_error_is_raised_after_every_call_finished() -> None:
    done: list[int] = []
    raised = threading.Event()

    def call(index: int) -> int:
        if index == 0:
            raised.set()
            raise ValueError("first")
        # The others finish only after the error: thread_map must still wait for them.
        assert raised.wait(DEADLINE)
        done.append(index)
        return index

    with pytest.raises(ValueError, match="first"):
        thread_map(call, [0, 1, 2], 3, never)
    assert sorted(done) == [1, 2]


def test_a_call_returning_none_is_a_value() -> None:
    assert thread_map(lambda i: None, [1, 2], 2, never) == [None, None]


def test_threads_start_only_as_work_arrives() -> None:
    with Workers[int, int](lambda i: i + 1, 8, never) as workers:
        workers.submit(1)
        assert workers.next_done() == (1, 2, None)
        workers.submit(2)
        assert workers.next_done() == (2, 3, None)
        assert len(workers._threads) == 1  # what is under test
        assert workers.pending == 0


def test_next_done_hands_back_the_exception_a_call_raised() -> None:
    def call(i: int) -> int:
        raise KeyError(i)

    with Workers[int, int](call, 2, never) as workers:
        workers.submit(7)
        item, value, error = workers.next_done()
    assert (item, value) == (7, None)
    assert isinstance(error, KeyError)


def test_an_interrupt_stops_what_the_threads_wait_on_before_joining_them() -> None:
    stop = threading.Event()
    order: list[str] = []

    def call(i: int) -> int:
        # A delegate run that only ends when on_interrupt stops it.
        assert stop.wait(DEADLINE)
        order.append("call ended")
        return i

    def on_interrupt() -> None:
        order.append("on_interrupt")
        stop.set()

    with pytest.raises(KeyboardInterrupt), Workers[int, int](call, 2, on_interrupt) as workers:
        workers.submit(1)
        workers.submit(2)
        raise KeyboardInterrupt
    # Joined: both calls ended, and only after on_interrupt let them.
    assert order == ["on_interrupt", "call ended", "call ended"]
