"""The live scorer's upkeep: the refresher thread's re-checks; the in-memory history warmed in the background when the
server starts (or on first use), checked against `transactions` between commits, frauds re-read when `labels`
changed; the stored rows a new event's windows reach (the SQL path); closing (threads joined, the writer closed).

While the background warm runs it holds the scoring lock: events posted meanwhile wait for it (each then gets the
answer it would get afterwards, from the whole history), and the status says `"history": "warming"`.

A mixin of :class:`fraudlab.api.service.LiveScoring`, which owns the state it reads (`ws`, the writer, the
re-check clock and the stage timings).
"""
from __future__ import annotations

import gc
import logging
import threading
import time

import duckdb
import pyarrow as pa

from fraudlab.api.history import LABELS_STAMP, HistoryCache
from fraudlab.api.live import LivePlan
from fraudlab.api.online import CODED, OnlineHistory, supported
from fraudlab.errors import FraudlabError
from fraudlab.workspace import quote_ident

LOG = logging.getLogger("fraudlab.api")


class HistoryUpkeep:
    """Keeps the live scorer's histories current (see the module docstring)."""

    def _refresh_loop(self) -> None:
        """The refresher thread: every `recheck_s`, the checks that a load, a rebuild, a promotion or a new label
        changed nothing (a dozen catalog queries, ~10-20 ms), made here so no batch waits for them."""
        while not self._stop.wait(self.recheck_s):
            try:
                self._refresh()
            except (FraudlabError, duckdb.Error) as exc:  # the scoring path checks again and reports it
                if "closed" in str(exc).lower():  # the server closed the workspace: nothing left to check
                    return
                LOG.warning("live scoring: a re-check failed: %s", exc)

    def start_warm(self, freeze_heap: bool = False) -> None:
        """Warm the plan, the models and the online history in a background thread (servers call it at start, so the
        first event does not wait 20-30 s at 10M rows for what a query-free answer needs); once only. `freeze_heap`:
        after each warm, move every object alive out of the garbage collector's reach (server processes only)."""
        self._freeze_heap = freeze_heap
        with self._queue:
            if self._warming is not None or self._stopping:
                return
            self._warming = threading.Thread(target=self._warm_in_background, name="fraudlab-live-warm", daemon=True)
            self._warm_span = [time.monotonic(), None]
            self._warming.start()

    def _warm_in_background(self) -> None:
        try:
            with self._lock:  # events posted meanwhile wait here (in the decider), then see the whole history
                plan = self.plan()
                self.models()  # loaded and warmed (predict.warm) here, not on the first event's path
                if self.online and not plan.definitions and supported(plan.plan):
                    self._online_history(plan)
        except (FraudlabError, duckdb.Error) as exc:  # not ready (no features yet) or closed: the first event retries
            LOG.warning("live scoring: the background warm stopped: %s", exc)
        finally:
            self._warm_span[1] = time.monotonic()

    @property
    def stopping(self) -> bool:
        """True once :meth:`close` began (a server shutting down): a new scorer is needed for new events."""
        return self._stopping

    @property
    def closed(self) -> bool:
        """True once :meth:`close` returned (its threads were joined, its writer closed)."""
        return self._closed

    def close(self) -> None:
        """Decide what waits, stop the decider, commit what waits and stop the writer (a second caller waits for
        the first one's close)."""
        with self._close_lock:
            with self._queue:
                self._stopping = True
                self._queue.notify_all()
            self._stop.set()
            for thread in (self._warming, self._refresher, self._decider):  # the warm may take a minute at 10M rows
                if thread is not None:
                    thread.join(timeout=120)
            if self._writer is not None:
                self._writer.close()
            self._closed = True

    def history_state(self) -> dict:
        """What the status says of the online history: warming (seconds so far), ready (rows, seconds it took),
        or cold (not warmed yet: the first event warms it)."""
        span = self._warm_span
        if span is not None and span[1] is None:
            return {"history": "warming", "warming_s": round(time.monotonic() - span[0], 1)}
        if self._online is None:
            return {"history": "cold"}
        return {"history": "ready", "history_rows": self._online.rows,
                "warm_s": None if span is None else round(span[1] - span[0], 1)}

    def _online_history(self, plan: LivePlan) -> OnlineHistory:
        """The NumPy path's history: warmed on first use and when `transactions` changed behind it (a load), with
        the frauds re-read when `labels` changed (no query at all between checks)."""
        keys = tuple(c for c in CODED if c in plan.source_columns)
        warm = self._online is None or self._online.keys != keys
        if not warm and self._labels_stamp is not None and not self._due("online"):
            return self._online
        cur = self.ws.cursor()
        try:
            self._check_history(cur, plan, keys, warm)
        finally:
            cur.close()
        return self._online

    def _check_history(self, cur, plan: LivePlan, keys: tuple[str, ...], warm: bool) -> None:
        """Warm the history, or check it against `transactions`; re-read the frauds when `labels` changed."""
        writer = self.writer()
        if warm:
            self._warm(cur, keys)
        elif writer.commit_lock.acquire(blocking=False):
            try:  # only between commits: then DuckDB holds every row but the waiting ones
                stored = cur.execute("SELECT count(*) FROM transactions").fetchall()[0][0]
                stale = stored + writer.unwritten != self._online.rows
            finally:
                writer.commit_lock.release()
            if stale:
                self._warm(cur, keys)
        stamp = tuple(cur.execute(LABELS_STAMP).fetchall()[0])
        if stamp != self._labels_stamp:
            self._online.set_frauds(cur, plan.label_delay_days)
            self._labels_stamp = stamp

    def _warm(self, cur, keys: tuple[str, ...]) -> None:
        """Read the history from DuckDB, then the rows answered but not committed yet (no commit runs meanwhile)."""
        began = time.perf_counter()
        with self.writer().paused():
            online = OnlineHistory(keys)
            online.warm(cur)
            for rows in self.writer().pending_rows():
                online.append(rows)
        self._online, self._labels_stamp = online, None
        if self._freeze_heap:  # what is alive now lives as long as the server: no GC walks it
            gc.collect()
            gc.freeze()
        self.stage_ms["warms"] += 1
        self._tick("warm (history read)", began)  # counted inside "rows + history" too

    def _late(self, rows: list[dict], plan: LivePlan) -> list[str]:
        """Events older than a stored row sharing one of their window keys (that row's features must include them)."""
        if self._history is not None and self._history.table is not None:
            return self._history.later(rows, tuple(plan.spans))
        ids = [row["transaction_id"] for row in rows]
        found: set[str] = set()
        for key in plan.spans:
            k = quote_ident(key)
            found |= set(self.ws.df(f"SELECT DISTINCT n.transaction_id FROM transactions n JOIN transactions t "
                                    f"ON t.{k} = n.{k} AND t.ts > n.ts WHERE n.transaction_id IN (SELECT unnest($i))",
                                    {"i": ids})["transaction_id"])
        return sorted(found)

    def _reach(self, cur, rows: list[dict], plan: LivePlan) -> pa.Table | None:
        """The stored rows the new rows' windows reach, from the online history (warmed on first use and whenever
        `transactions` changed behind it); None when it is turned off."""
        if not self.online:
            return None
        keys = tuple(plan.spans)
        if self._history is None or self._history.keys != keys:
            self._history = HistoryCache(keys)
        if self._history.table is None or (self._due("history") and not self._history.fresh(cur)):
            self._history.warm(cur)
        return self._history.reach(rows, plan.spans)
