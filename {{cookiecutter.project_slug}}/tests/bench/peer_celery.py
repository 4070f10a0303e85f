"""The plain-Celery peer of `make bench PEER=1`: no outbox. The producer
commits the order, then delay()s a task straight to Redis; the task is the
stack's handler (one confirmation row). What the outbox's guarantee costs is
the difference: here an order whose delay() fails after its commit is never
confirmed.

    celery -A peer_celery worker -Q peer-bench   (PEER_DATABASE_URL, PEER_BROKER_URL)
"""

import os
import threading
import time
import uuid

import psycopg
from celery import Celery

QUEUE = "peer-bench"
INSERT_ORDER = "INSERT INTO orders (id, reference) VALUES (%s, %s)"
CONFIRM = (
    "INSERT INTO order_confirmations (outbox_event_id, order_id) VALUES (%(id)s, %(id)s) "
    "ON CONFLICT (outbox_event_id) DO NOTHING"
)

app = Celery("peer_celery", broker=os.environ.get("PEER_BROKER_URL"))
app.conf.update(task_default_queue=QUEUE, task_ignore_result=True, worker_hijack_root_logger=False)
# A connection per pool process or thread, made on its first task: after the fork.
local = threading.local()


@app.task(name="peer.confirm")
def confirm(order_id: str) -> None:
    if not hasattr(local, "database"):
        local.database = psycopg.connect(os.environ["PEER_DATABASE_URL"], autocommit=True)
    local.database.execute(CONFIRM, {"id": uuid.UUID(order_id)})


def produce(url: str, count: int, rate: float | None) -> None:
    """`count` orders, then a task each: the orders in one transaction, or
    one each at `rate` a second."""
    ids = [uuid.uuid4() for _ in range(count)]
    started = time.monotonic()
    with psycopg.connect(url, autocommit=rate is not None) as connection, app.producer_or_acquire() as producer:
        if rate is None:
            with connection.cursor() as cursor:
                cursor.executemany(INSERT_ORDER, [(order, f"peer-{order.hex[:8]}") for order in ids])
            connection.commit()
        for written, order in enumerate(ids, 1):
            if rate is not None:
                connection.execute(INSERT_ORDER, (order, f"peer-{order.hex[:8]}"))
            confirm.apply_async((str(order),), producer=producer)
            if rate is not None:
                time.sleep(max(0.0, started + written / rate - time.monotonic()))
