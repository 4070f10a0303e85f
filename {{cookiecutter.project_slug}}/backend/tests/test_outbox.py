"""The outbox against a real PostgreSQL."""

import threading

from sqlalchemy import func, select, text, update

from {{ cookiecutter.package_name }} import outbox
from {{ cookiecutter.package_name }}.models import FAILED, PENDING, PROCESSED, PROCESSING, OrderConfirmation, OutboxEvent
from {{ cookiecutter.package_name }}.orders import HANDLERS, ORDER_CREATED, confirm_orders, create_orders


def emit(new_session, count):
    with new_session() as session:
        create_orders(session, count)
        session.commit()


def statuses(new_session):
    with new_session() as session:
        return outbox.count_by_status(session)


def effects(new_session) -> int:
    with new_session() as session:
        return session.scalar(select(func.count()).select_from(OrderConfirmation))


def drain(new_session, handlers=HANDLERS, *, max_attempts=3, batch_size=100, retry_delay=0, budget=60, **options):
    return outbox.drain(
        new_session,
        handlers,
        batch_size=batch_size,
        lease_seconds=60,
        max_attempts=max_attempts,
        retry_delay_seconds=retry_delay,
        budget_seconds=budget,
        **options,
    )


def add_event(new_session, event_type, payload):
    with new_session() as session:
        outbox.record_event(session, event_type, payload)
        session.commit()


def test_concurrent_claimers_never_get_the_same_row(new_session):
    """Two claimers in open transactions get disjoint rows that cover the batch."""
    emit(new_session, 10)
    with new_session() as first, new_session() as second:
        claimed_first = outbox.claim_batch(first, batch_size=6, lease_seconds=60)
        claimed_second = outbox.claim_batch(second, batch_size=6, lease_seconds=60)
        first.commit()
        second.commit()
    ids_first = {event.id for event in claimed_first}
    ids_second = {event.id for event in claimed_second}
    assert len(ids_first) == 6
    assert len(ids_second) == 4
    assert not ids_first & ids_second
    assert statuses(new_session)[PROCESSING] == 10


def test_draining_hands_each_event_to_its_handler_and_marks_it_processed(new_session):
    emit(new_session, 3)
    result = drain(new_session)
    assert (result.processed, result.retried, result.dead_lettered, result.more_left) == (3, 0, 0, False)
    assert statuses(new_session)[PROCESSED] == 3
    assert effects(new_session) == 3


def test_a_failing_event_undoes_only_its_own_effects_in_the_batch(new_session):
    """The batch is one transaction with a savepoint per event."""
    emit(new_session, 3)
    with new_session() as session:
        victim = str(session.scalars(select(OutboxEvent)).first().payload["order_id"])

    def fails_after_its_effects(session, events):
        confirm_orders(session, events)
        if any(event.payload["order_id"] == victim for event in events):
            raise RuntimeError("downstream said no")

    result = drain(new_session, {ORDER_CREATED: fails_after_its_effects})
    assert (result.processed, result.retried) == (2, 1)
    assert effects(new_session) == 2
    with new_session() as session:
        confirmed = {str(order_id) for order_id in session.scalars(select(OrderConfirmation.order_id))}
    assert victim not in confirmed
    assert statuses(new_session) == {PENDING: 1, PROCESSING: 0, PROCESSED: 2, FAILED: 0}


def test_a_failing_handler_retries_then_dead_letters_without_blocking_others(new_session):
    def broken(session, events):
        raise RuntimeError("downstream said no")

    emit(new_session, 1)
    add_event(new_session, "invoice.sent", {"invoice": 1})
    handlers = {**HANDLERS, "invoice.sent": broken}

    first = drain(new_session, handlers)
    assert (first.processed, first.retried) == (1, 1)
    assert drain(new_session, handlers).retried == 1
    assert drain(new_session, handlers).dead_lettered == 1
    assert drain(new_session, handlers).dead_lettered == 0

    with new_session() as session:
        failed = session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "invoice.sent")).one()
    assert failed.status == FAILED
    assert failed.attempts == 3
    assert failed.last_error == "RuntimeError: downstream said no"
    assert statuses(new_session) == {PENDING: 0, PROCESSING: 0, PROCESSED: 1, FAILED: 1}


def test_a_failed_event_waits_out_its_retry_delay(new_session):
    add_event(new_session, "unknown.kind", {})
    assert drain(new_session, retry_delay=60).retried == 1
    assert drain(new_session, retry_delay=60).retried == 0
    assert statuses(new_session)[PENDING] == 1


def test_an_event_without_a_handler_is_dead_lettered_not_lost(new_session):
    add_event(new_session, "unknown.kind", {})
    assert drain(new_session, max_attempts=1).dead_lettered == 1
    with new_session() as session:
        event = session.scalars(select(OutboxEvent)).one()
    assert event.status == FAILED
    assert "KeyError" in event.last_error


def test_a_drain_claims_batch_after_batch_until_the_backlog_is_empty(new_session):
    emit(new_session, 250)
    backlog_calls = []
    result = drain(new_session, batch_size=100, on_backlog=lambda: backlog_calls.append(1))
    assert (result.processed, result.more_left) == (250, False)
    assert backlog_calls == [1]
    assert effects(new_session) == 250


def test_a_drain_stops_at_its_budget_and_says_more_is_left(new_session):
    emit(new_session, 250)
    result = drain(new_session, batch_size=100, budget=0)
    assert (result.processed, result.more_left) == (100, True)
    assert statuses(new_session)[PENDING] == 150


def test_concurrent_drains_handle_each_event_exactly_once(new_session):
    emit(new_session, 2000)
    results = []
    drainers = [threading.Thread(target=lambda: results.append(drain(new_session, batch_size=50))) for _ in range(3)]
    for drainer in drainers:
        drainer.start()
    for drainer in drainers:
        drainer.join()
    assert sum(result.processed for result in results) == 2000
    assert effects(new_session) == 2000
    assert statuses(new_session)[PROCESSED] == 2000


def test_reprocessing_the_same_event_has_no_double_effect(new_session):
    emit(new_session, 1)
    drain(new_session)
    with new_session() as session:
        event = session.scalars(select(OutboxEvent)).one()
        confirm_orders(session, [event])
        confirm_orders(session, [event])
        session.commit()
    assert effects(new_session) == 1


def test_cleanup_deletes_only_old_processed_rows(new_session):
    emit(new_session, 4)
    drain(new_session)
    emit(new_session, 1)
    with new_session() as session:
        ids = session.scalars(select(OutboxEvent.id).where(OutboxEvent.status == PROCESSED)).all()
        old_processed, recent_processed = ids[:2], ids[2:]
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(old_processed))
            .values(processed_at=func.now() - text("interval '8 days'"))
        )
        # An old row that failed or is still pending is evidence, not garbage.
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.status == PENDING)
            .values(created_at=func.now() - text("interval '30 days'"))
        )
        session.commit()
        assert outbox.delete_processed_before(session, retention_days=7) == 2
        session.commit()
        remaining = set(session.scalars(select(OutboxEvent.id)).all())
    assert remaining.issuperset(recent_processed)
    assert not remaining & set(old_processed)
    assert statuses(new_session)[PENDING] == 1


def claim_and_die(new_session):
    """A claimer that took every pending event, then died: its leases ran out."""
    with new_session() as session:
        claimed = outbox.claim_batch(session, batch_size=100, lease_seconds=600)
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_([event.id for event in claimed]))
            .values(locked_until=func.now() - text("interval '1 second'"))
        )
        session.commit()
    return claimed


def test_a_drain_takes_back_expired_leases_and_only_those(new_session):
    emit(new_session, 2)
    claim_and_die(new_session)
    emit(new_session, 1)
    with new_session() as session:
        outbox.claim_batch(session, batch_size=1, lease_seconds=600)
        session.commit()
        assert outbox.count_expired_leases(session) == 2

    assert drain(new_session).processed == 2
    assert statuses(new_session) == {PENDING: 0, PROCESSING: 1, PROCESSED: 2, FAILED: 0}


def test_an_event_whose_worker_dies_on_every_attempt_is_dead_lettered(new_session):
    emit(new_session, 1)
    claim_and_die(new_session)
    for _ in range(2):
        with new_session() as session:
            outbox.take_back_expired_leases(session, max_attempts=3)
            session.commit()
        claim_and_die(new_session)

    assert drain(new_session, max_attempts=3).dead_lettered == 1
    with new_session() as session:
        event = session.scalars(select(OutboxEvent)).one()
    assert (event.status, event.attempts) == (FAILED, 3)
    assert event.last_error == "lease expired: its worker died on every attempt"


def test_emit_writes_each_order_with_its_event_in_one_transaction(new_session):
    with new_session() as session:
        create_orders(session, 2)
        session.rollback()
    assert sum(statuses(new_session).values()) == 0
    emit(new_session, 2)
    with new_session() as session:
        events = session.scalars(select(OutboxEvent)).all()
    assert [event.event_type for event in events] == [ORDER_CREATED, ORDER_CREATED]
