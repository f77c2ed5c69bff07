"""Cooperative scheduling of kernel tasks at the driver's sleep and reschedule points.

The OP-TEE driver sleeps on its call queue when the secure world answers ETHREAD_LIMIT and
reschedules after a FOREIGN_INTR RPC. Kernel code paths are generators that yield
:class:`Sleep` or :class:`Resched` there, so several user-space callers can interleave exactly
at those points, as they do on a real kernel.
"""
from __future__ import annotations

import errno
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generator

from linux_side.errors import LinuxError


@dataclass
class WaitQueue:
    name: str
    waiters: deque = field(default_factory=deque)
    wake: Callable[["WaitQueue"], None] | None = None

    def wake_one(self) -> None:
        if self.wake is not None and self.waiters:
            self.wake(self)


@dataclass
class Sleep:
    queue: WaitQueue


@dataclass
class Resched:
    pass


KernelGen = Generator[Any, Any, Any]
MAX_IDLE_SLEEPS = 64


def run_sync(gen: KernelGen) -> Any:
    """Run one kernel path to completion; with nobody else to run, a sleep cannot end."""
    value = None
    idle = 0
    while True:
        try:
            ev = gen.send(value)
        except StopIteration as done:
            return done.value
        value = None
        if isinstance(ev, Sleep):
            idle += 1
            if idle > MAX_IDLE_SLEEPS:
                gen.close()
                raise LinuxError(errno.EDEADLK, f"sleeping on {ev.queue.name} with no other "
                                 "task that could wake it (every secure thread is held)")


@dataclass
class Task:
    name: str
    gen: KernelGen
    result: Any = None
    error: BaseException | None = None
    done: bool = False


def run_tasks(tasks: list[Task], queues: list[WaitQueue]) -> list[Task]:
    """Round-robin the tasks at their yield points until all finish."""
    runnable: deque[Task] = deque(tasks)
    parked: dict[int, WaitQueue] = {}

    def waker(q: WaitQueue) -> None:
        task = q.waiters.popleft()
        parked.pop(id(task), None)
        runnable.append(task)

    for q in queues:
        q.wake = waker
    try:
        while runnable:
            task = runnable.popleft()
            try:
                ev = task.gen.send(None)
            except StopIteration as done:
                task.result, task.done = done.value, True
                continue
            except LinuxError as exc:
                task.error, task.done = exc, True
                continue
            if isinstance(ev, Sleep):
                ev.queue.waiters.append(task)
                parked[id(task)] = ev.queue
            else:
                runnable.append(task)
        for task in tasks:
            if not task.done:
                task.gen.close()
                task.error, task.done = LinuxError(errno.EDEADLK, "task never woken"), True
    finally:
        for q in queues:
            q.wake = None
            q.waiters.clear()
    return tasks
