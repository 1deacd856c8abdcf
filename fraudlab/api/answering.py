"""The scoring route's wait for its answer without a thread per request: an asyncio future the live scorer settles.

A request thread per event cost two hand-offs between threads (event loop -> worker, worker -> event loop), each
waiting for the GIL behind the decider, plus a wake-up per event to fsync. Here the event loop parses and queues the
event itself (:meth:`fraudlab.api.service.LiveScoring.submit`), the decider calls back once it is decided, the
writer's syncer thread once the live log holding it is fsync'ed (one fsync for all that wait), and only then is the
future settled: the answer still goes out only once it is durable, as :meth:`LiveScoring.score` guarantees.
"""
from __future__ import annotations

import asyncio

from fraudlab.api.service import LiveScoring
from fraudlab.api.store import Job


def _settle(future: asyncio.Future, job: Job) -> None:
    if not future.done():  # (a client that went away cancelled it)
        future.set_result(job)


async def score_async(svc: LiveScoring, payload: object, key_name: str | None) -> dict:
    """The answer :meth:`LiveScoring.score` gives, awaited on the running event loop (raises what it raises)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(job: Job) -> None:  # from the decider's or the syncer's thread
        try:
            loop.call_soon_threadsafe(_settle, future, job)
        except RuntimeError:  # the loop closed meanwhile (server shutdown): nobody waits for this answer
            pass

    def decided(job: Job) -> None:  # the decider's thread: answered once the log holding it is durable
        if job.error is None and job.logged:
            svc.writer().when_durable(job.logged, lambda: settle(job))
        else:
            settle(job)

    svc.submit(payload, key_name, on_ready=decided)
    job = await future
    if job.error is not None:
        raise job.error
    return job.answer
