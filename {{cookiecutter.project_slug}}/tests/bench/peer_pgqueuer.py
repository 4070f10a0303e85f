"""The pgqueuer peer of `make bench PEER=1`: its producer (an order and its
job in one transaction, as the outbox writes an order and its event) and, run
as a script, its consumer: DEQUEUE PgQueuer instances in one process, each
dequeuing BATCH jobs at a time, over asyncpg, pgqueuer's fastest driver.

    python peer_pgqueuer.py DEQUEUE BATCH   (PEER_DATABASE_URL: where)
"""

import asyncio
import os
import signal
import sys
import time
import uuid

import asyncpg
from pgqueuer import PgQueuer, Queries
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

ENTRYPOINT = "confirm"
POOL = 16
INSERT_ORDER = "INSERT INTO orders (id, reference) VALUES ($1, $2)"
# The stack's handler: one confirmation row per order, idempotent by its key.
CONFIRM = (
    "INSERT INTO order_confirmations (outbox_event_id, order_id) VALUES ($1, $1) "
    "ON CONFLICT (outbox_event_id) DO NOTHING"
)


async def install(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(connection))
        if not await queries.schema_is_installed():
            await queries.install()
        await queries.clear_queue()
    finally:
        await connection.close()


async def produce(url: str, count: int, rate: float | None) -> None:
    """`count` orders with their jobs: all in one transaction, or one
    transaction each at `rate` a second."""
    connection = await asyncpg.connect(url)
    queries = Queries(AsyncpgDriver(connection))
    ids = [uuid.uuid4() for _ in range(count)]
    try:
        if rate is None:
            async with connection.transaction():
                await connection.executemany(INSERT_ORDER, [(order, f"peer-{order.hex[:8]}") for order in ids])
                await queries.enqueue([ENTRYPOINT] * count, [order.bytes for order in ids], [0] * count)
            return
        started = time.monotonic()
        for written, order in enumerate(ids, 1):
            async with connection.transaction():
                await connection.execute(INSERT_ORDER, order, f"peer-{order.hex[:8]}")
                await queries.enqueue(ENTRYPOINT, order.bytes)
            await asyncio.sleep(max(0.0, started + written / rate - time.monotonic()))
    finally:
        await connection.close()


async def consume(url: str, dequeue: int, batch: int) -> None:
    """Until SIGTERM: DEQUEUE PgQueuers on a connection each; the handlers
    share a pool of up to POOL connections (PostgreSQL allows 100 in all)."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=min(dequeue * batch, POOL))

    async def confirm(job: Job) -> None:
        await pool.execute(CONFIRM, uuid.UUID(bytes=job.payload))

    queuers = []
    for _ in range(dequeue):
        queuer = PgQueuer.from_asyncpg_connection(await asyncpg.connect(url))
        queuer.entrypoint(ENTRYPOINT)(confirm)
        queuers.append(queuer)
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, lambda: [q.shutdown.set() for q in queuers])
    await asyncio.gather(*(queuer.run(batch_size=batch) for queuer in queuers))
    await pool.close()


if __name__ == "__main__":
    asyncio.run(consume(os.environ["PEER_DATABASE_URL"], int(sys.argv[1]), int(sys.argv[2])))
