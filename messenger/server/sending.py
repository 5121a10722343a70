"""Group commit of sends: concurrent sends to one conversation share one transaction.

A conversation's sequence numbers are gap-free, so its senders take turns on one row lock;
one at a time, each send pays its own transaction, lock and commit. Here the first send to a
conversation starts a task that appends whatever has queued meanwhile in one batch
(`store.sends.append_messages`), commits once, answers every request with its own outcome,
and goes on while more have queued. A lone send goes straight through (no waiting for
company); under load, batches grow by themselves. A batch of usual sends takes the short path
(`store.usual_sends`: one statement on PostgreSQL, whatever the batch's size).

Publishing a batch runs beside the next batch's database work, in order per conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from messenger.server.wire import route_conversation
from messenger.store.sends import PendingSend, SendOutcome, append_messages
from messenger.store.usual_sends import UsualSendsUndone, store_usual_sends

log = logging.getLogger("messenger.server.sending")

# Sends per transaction: bounds a batch's statements and its time holding the row lock.
MAX_BATCH = 64


@dataclass
class _Waiting:
    send: PendingSend
    answer: asyncio.Future[SendOutcome]
    session_id: str | None = None  # checked in the batch (`check_sessions`)


#: The sessions among these that can no longer send, each with its error (read on the batch's
#: connection, in its transaction).
SessionCheck = Callable[[AsyncConnection, set[str]], Awaitable[Mapping[str, Exception]]]


class GroupCommit:
    """The send queues of one node's conversations."""

    def __init__(
        self,
        engine: AsyncEngine,
        publish: Callable[[list[dict[str, Any]]], Awaitable[None]],
        check_sessions: SessionCheck | None = None,
        sessions_issued_after: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """`sessions_issued_after` gives the oldest creation time of a session that has not
        expired, for the short path's own session check (`store_usual_sends`); without it a
        batch with a session to check takes the general path."""
        self._engine = engine
        self._publish_items = publish
        self._check_sessions = check_sessions
        self._sessions_issued_after = sessions_issued_after
        self._queues: dict[str, list[_Waiting]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._publishing: dict[str, asyncio.Task[None]] = {}

    async def send(
        self, conversation_id: str, send: PendingSend, *, session_id: str | None = None
    ) -> SendOutcome:
        """Queue a send and wait for its outcome (its error is raised here). With `session_id`,
        the batch first checks that the session may still send (one statement for the batch,
        not one round trip per send)."""
        answer: asyncio.Future[SendOutcome] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(send, answer, session_id)
        self._queues.setdefault(conversation_id, []).append(waiting)
        if conversation_id not in self._workers:
            self._workers[conversation_id] = asyncio.create_task(self._drain(conversation_id))
        outcome = await answer
        if outcome.error is not None:
            raise outcome.error
        return outcome

    async def stop(self) -> None:
        for task in [*self._workers.values(), *self._publishing.values()]:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _drain(self, conversation_id: str) -> None:
        queue = self._queues[conversation_id]
        try:
            while queue:
                batch: list[_Waiting] = []
                later: list[_Waiting] = []
                seen: set[tuple[str, str]] = set()
                for waiting in queue:
                    key = (waiting.send.user_id, waiting.send.txn_id)
                    # A repeated transaction id waits for the next batch, which answers it
                    # as a duplicate of this one (or runs it, if this one failed).
                    if key in seen or len(batch) >= MAX_BATCH or waiting.answer.done():
                        later.append(waiting)
                    else:
                        seen.add(key)
                        batch.append(waiting)
                queue[:] = [w for w in later if not w.answer.done()]
                await self._commit(conversation_id, batch)
        finally:
            del self._workers[conversation_id]
            del self._queues[conversation_id]
            for waiting in queue:  # only when cancelled (the server stops)
                if not waiting.answer.done():
                    waiting.answer.set_exception(RuntimeError("the server is stopping"))

    async def _commit(self, conversation_id: str, batch: list[_Waiting]) -> None:
        try:
            try:
                ended, going, outcomes = await self._store(conversation_id, batch, usual=True)
            except UsualSendsUndone:  # rolled back: the general path decides
                ended, going, outcomes = await self._store(conversation_id, batch, usual=False)
        except Exception as exc:
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        items = [route_conversation(o.event) for o in outcomes if o.event is not None]
        if items:
            self._publish(conversation_id, items)
        for waiting, outcome in zip(going, outcomes, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(outcome)
        for waiting in batch:
            refusal = ended.get(waiting.session_id or "")
            if refusal is not None and not waiting.answer.done():
                waiting.answer.set_exception(refusal)

    async def _store(
        self, conversation_id: str, batch: list[_Waiting], *, usual: bool
    ) -> tuple[Mapping[str, Exception], list[_Waiting], list[SendOutcome]]:
        """One transaction for the batch: the refusals of ended sessions, the sends that went
        on and their outcomes. With `usual`, the short path is tried first."""
        async with self._engine.begin() as conn:  # commits at the end
            if usual:
                issued_after = self._sessions_issued_after
                stored = await store_usual_sends(
                    conn,
                    conversation_id,
                    [w.send for w in batch],
                    # Sessions are checked only with a checker, as on the general path below.
                    session_ids=[w.session_id if self._check_sessions else None for w in batch],
                    sessions_issued_after=issued_after() if issued_after else None,
                )
                if stored is not None:
                    return {}, batch, stored
            ended: Mapping[str, Exception] = {}
            sessions = {w.session_id for w in batch if w.session_id is not None}
            if sessions and self._check_sessions is not None:
                ended = await self._check_sessions(conn, sessions)
            going = [w for w in batch if w.session_id not in ended]
            sends = [w.send for w in going]
            outcomes = await append_messages(conn, conversation_id, sends) if sends else []
            return ended, going, outcomes

    def _publish(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        """Publish after the conversation's previous batch, without holding up the next."""
        previous = self._publishing.get(conversation_id)

        async def publish() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                await self._publish_items(items)
            finally:
                if self._publishing.get(conversation_id) is task:
                    del self._publishing[conversation_id]

        task = asyncio.create_task(publish())
        self._publishing[conversation_id] = task
