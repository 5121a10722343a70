"""A model of the messenger's `events` table, flat and partitioned by tenant, in the scale
test's private PostgreSQL: what partitioning changes for a history page, a tenant's retention
purge and removing a tenant. Synthetic rows (not the messenger's schema or code): the
numbers say what the design in deploy/README.md would buy, not what the server does today.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

TENANTS = 10
CONVERSATIONS_PER_TENANT = 100
EVENTS_PER_CONVERSATION = 400
HISTORY_READS = 200

SCHEMA = """
DROP SCHEMA IF EXISTS partition_model CASCADE;
CREATE SCHEMA partition_model;
SET search_path = partition_model;
CREATE TABLE ev_flat (
    tenant_id int NOT NULL, conversation_id int NOT NULL, seq bigint NOT NULL,
    created_at timestamptz NOT NULL, ciphertext bytea,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX ON ev_flat (created_at);
CREATE TABLE ev_part (
    tenant_id int NOT NULL, conversation_id int NOT NULL, seq bigint NOT NULL,
    created_at timestamptz NOT NULL, ciphertext bytea,
    PRIMARY KEY (tenant_id, conversation_id, seq)
) PARTITION BY LIST (tenant_id);
CREATE INDEX ON ev_part (created_at);
{partitions}
"""
PARTITIONS = "\n".join(
    f"CREATE TABLE ev_part_{t} PARTITION OF ev_part FOR VALUES IN ({t});" for t in range(TENANTS)
)

FILL = f"""
INSERT INTO {{table}}
SELECT t, t * 100000 + c, s, now() - make_interval(mins => {EVENTS_PER_CONVERSATION} - s),
       decode(repeat('ab', 128), 'hex')
FROM generate_series(0, {TENANTS - 1}) t,
     generate_series(1, {CONVERSATIONS_PER_TENANT}) c,
     generate_series(1, {EVENTS_PER_CONVERSATION}) s
"""


async def simulate(url: str) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SCHEMA.format(partitions=PARTITIONS))
        await conn.execute("SET search_path = partition_model")
        result: dict[str, Any] = {
            "rows": TENANTS * CONVERSATIONS_PER_TENANT * EVENTS_PER_CONVERSATION,
            "tenants": TENANTS,
        }
        for table in ("ev_flat", "ev_part"):
            t0 = time.perf_counter()
            await conn.execute(FILL.format(table=table))
            await conn.execute(f"ANALYZE {table}")
            result[f"{table}_fill_s"] = round(time.perf_counter() - t0, 2)

        async def timed(sql: str, *args: object) -> float:
            t0 = time.perf_counter()
            await conn.execute(sql, *args)
            return (time.perf_counter() - t0) * 1000

        # A history page: 100 events of one conversation after a position.
        flat, part = [], []
        for i in range(HISTORY_READS):
            tenant, conv = i % TENANTS, i % TENANTS * 100000 + 1 + i % CONVERSATIONS_PER_TENANT
            flat.append(
                await timed(
                    "SELECT * FROM ev_flat WHERE conversation_id = $1 AND seq > $2 "
                    "ORDER BY seq LIMIT 100",
                    conv,
                    150,
                )
            )
            part.append(
                await timed(
                    "SELECT * FROM ev_part WHERE tenant_id = $1 AND conversation_id = $2 "
                    "AND seq > $3 ORDER BY seq LIMIT 100",
                    tenant,
                    conv,
                    150,
                )
            )
        result["history_page_p50_ms"] = {
            "flat": round(statistics.median(flat), 2),
            "partitioned": round(statistics.median(part), 2),
        }
        # One tenant's retention purge: its events older than 200 minutes (half of them).
        cutoff = "now() - interval '200 minutes'"
        result["tenant_retention_purge_ms"] = {
            "flat": round(
                await timed(f"DELETE FROM ev_flat WHERE tenant_id = 3 AND created_at < {cutoff}"), 1
            ),
            "partitioned": round(
                await timed(f"DELETE FROM ev_part WHERE tenant_id = 3 AND created_at < {cutoff}"), 1
            ),
        }
        # A tenant leaves: every event of it goes.
        result["tenant_removal_ms"] = {
            "flat": round(await timed("DELETE FROM ev_flat WHERE tenant_id = 5"), 1),
            "partitioned_drop": round(await timed("DROP TABLE ev_part_5"), 1),
        }
        return result
    finally:
        await conn.execute("DROP SCHEMA IF EXISTS partition_model CASCADE")
        await conn.close()
