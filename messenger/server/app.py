"""The messenger server application: `create_app(settings)` returns a FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from messenger.server import errors, portal, webhooks
from messenger.server.alarms import scheduler as alarm_scheduler
from messenger.server.api import router
from messenger.server.api.stream import close_ended_streams, recheck_streams
from messenger.server.auth import make_hasher
from messenger.server.blobs import BlobStore
from messenger.server.clientip import parse_networks
from messenger.server.config import ServerSettings, metadata_key_path
from messenger.server.hub import Hub, LocalHub, RedisHub
from messenger.server.limits import BodyLimit, RefuseNul, RequestMetrics, WriteBufferProbe
from messenger.server.metrics import Metrics
from messenger.server.retention import scheduler
from messenger.server.state import AppState
from messenger.server.throttle import (
    Counters,
    HashGate,
    LoginThrottle,
    MemoryCounters,
    RedisCounters,
)
from messenger.store import repo, schema, sealing
from messenger.store.engine import make_engine, sessionmaker

log = logging.getLogger("messenger.server")


async def open_state(settings: ServerSettings) -> AppState:
    """Connect, check (and by default upgrade) the schema; refuses a newer schema."""
    engine = make_engine(settings.database_url, settings.db_schema)
    try:
        await schema.check(engine)
        if settings.auto_migrate:
            await schema.upgrade(engine)
        elif await schema.current_revision(engine) != schema.head_revision():
            raise schema.SchemaError("the database schema is not current; run the migrations")
        ring = sealing.load_keyring(metadata_key_path(settings), create=True)
        sealing.attach(engine, ring)
        async with sessionmaker(engine)() as db:
            sealed = await sealing.reseal(db, ring)
            await db.commit()
        if sealed:
            log.info("sealed or rewrapped %d stored names", sealed)
            await sealing.flush_old_pages(engine)
    except BaseException:
        await engine.dispose()
        raise
    hub: Hub = (
        RedisHub(settings.redis_url, settings.redis_channel) if settings.redis_url else LocalHub()
    )
    counters: Counters = (
        RedisCounters(settings.redis_url, settings.redis_channel + ":")
        if settings.redis_url
        else MemoryCounters()
    )
    blobs = BlobStore(settings.blob_dir, settings.node_name)
    if cleaned := blobs.clean_tmp():
        log.info("removed %d partial uploads left from before", cleaned)
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessionmaker(engine),
        hub=hub,
        blobs=blobs,
        metrics=Metrics(),
        hasher=make_hasher(settings.argon2),
        logins=LoginThrottle(settings.login, counters),
        hashing=HashGate(settings.login.hash_concurrency, settings.login.hash_queue),
        proxies=parse_networks(settings.trusted_proxies),
    )


def create_app(settings: ServerSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await open_state(settings)
        app.state.messenger = state
        await state.hub.start()

        def count(result: repo.PurgeResult) -> None:
            for kind, n in result.as_dict().items():
                state.metrics.purged.labels(kind).inc(n)

        purger = asyncio.create_task(
            scheduler(state.sessions, state.blobs, state.now, settings.purge_interval, count)
        )
        watcher = asyncio.create_task(close_ended_streams(state))
        rechecker = asyncio.create_task(recheck_streams(state))
        hooks = asyncio.create_task(webhooks.run(state))
        alarming = asyncio.create_task(alarm_scheduler(state, settings.alarm_interval))
        log.info("messenger server ready node=%s", settings.node_name)
        try:
            yield
        finally:
            for task in (purger, watcher, rechecker, alarming, hooks):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await state.sends.stop()
            await state.hub.stop()
            if isinstance(state.logins.counters, RedisCounters):
                await state.logins.counters.close()
            await state.engine.dispose()

    docs = settings.api_docs
    app = FastAPI(
        title="medbridge messenger",
        version="1",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    errors.install(app)
    app.include_router(router())
    portal.install(app)

    app.add_middleware(RequestMetrics)
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, upload=settings.max_upload_bytes)
    app.add_middleware(RefuseNul)
    app.add_middleware(WriteBufferProbe)  # last added runs first: it sees the server's send
    return app
