"""The outbox against a real PostgreSQL."""

from sqlalchemy import func, select, text, update

from {{ cookiecutter.package_name }} import outbox
from {{ cookiecutter.package_name }}.models import FAILED, PENDING, PROCESSED, PROCESSING, OrderConfirmation, OutboxEvent
from {{ cookiecutter.package_name }}.orders import HANDLERS, ORDER_CREATED, confirm_order, create_orders


def emit(new_session, count):
    with new_session() as session:
        create_orders(session, count)
        session.commit()


def statuses(new_session):
    with new_session() as session:
        return outbox.count_by_status(session)


def process(new_session, handlers=HANDLERS, max_attempts=3):
    return outbox.process_batch(new_session, handlers, batch_size=100, lease_seconds=60, max_attempts=max_attempts)


def test_concurrent_claimers_never_get_the_same_row(new_session):
    """Two claimers in open transactions get disjoint rows that cover the batch."""
    emit(new_session, 10)
    with new_session() as first, new_session() as second:
        claimed_first = outbox.claim_batch(first, batch_size=6, lease_seconds=60, max_attempts=3)
        claimed_second = outbox.claim_batch(second, batch_size=6, lease_seconds=60, max_attempts=3)
        first.commit()
        second.commit()
    ids_first = {event.id for event in claimed_first}
    ids_second = {event.id for event in claimed_second}
    assert len(ids_first) == 6
    assert len(ids_second) == 4
    assert not ids_first & ids_second
    assert statuses(new_session)[PROCESSING] == 10


def test_processing_hands_each_event_to_its_handler_and_marks_it_processed(new_session):
    emit(new_session, 3)
    result = process(new_session)
    assert (result.processed, result.retried, result.dead_lettered) == (3, 0, 0)
    assert statuses(new_session)[PROCESSED] == 3
    with new_session() as session:
        assert session.scalar(select(func.count()).select_from(OrderConfirmation)) == 3


def test_a_failing_handler_retries_then_dead_letters_without_blocking_others(new_session):
    def broken(session, event):
        raise RuntimeError("downstream said no")

    emit(new_session, 1)
    with new_session() as session:
        outbox.record_event(session, "invoice.sent", {"invoice": 1})
        session.commit()
    handlers = {**HANDLERS, "invoice.sent": broken}

    first = process(new_session, handlers, max_attempts=3)
    assert (first.processed, first.retried) == (1, 1)
    assert process(new_session, handlers, max_attempts=3).retried == 1
    assert process(new_session, handlers, max_attempts=3).dead_lettered == 1
    assert process(new_session, handlers, max_attempts=3).dead_lettered == 0

    with new_session() as session:
        failed = session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "invoice.sent")).one()
    assert failed.status == FAILED
    assert failed.attempts == 3
    assert failed.last_error == "RuntimeError: downstream said no"
    assert statuses(new_session) == {PENDING: 0, PROCESSING: 0, PROCESSED: 1, FAILED: 1}


def test_an_event_without_a_handler_is_dead_lettered_not_lost(new_session):
    with new_session() as session:
        outbox.record_event(session, "unknown.kind", {})
        session.commit()
    assert process(new_session, max_attempts=1).dead_lettered == 1
    with new_session() as session:
        event = session.scalars(select(OutboxEvent)).one()
    assert event.status == FAILED
    assert "KeyError" in event.last_error


def test_reprocessing_the_same_event_has_no_double_effect(new_session):
    emit(new_session, 1)
    process(new_session)
    with new_session() as session:
        event = session.scalars(select(OutboxEvent)).one()
        confirm_order(session, event)
        confirm_order(session, event)
        session.commit()
        assert session.scalar(select(func.count()).select_from(OrderConfirmation)) == 1


def test_cleanup_deletes_only_old_processed_rows(new_session):
    emit(new_session, 4)
    process(new_session)
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


def expire_leases(session, events):
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_([event.id for event in events]))
        .values(locked_until=func.now() - text("interval '1 second'"))
    )


def test_the_sweep_takes_back_expired_leases_and_only_those(new_session):
    """A claimer that died mid-batch leaves its events leased; the next sweep
    processes them once the lease has run out, and leaves live leases alone."""
    emit(new_session, 3)
    with new_session() as session:
        claimed = outbox.claim_batch(session, batch_size=3, lease_seconds=600, max_attempts=3)
        expire_leases(session, claimed[:2])
        session.commit()
        assert outbox.count_expired_leases(session) == 2

    assert process(new_session).processed == 2
    assert statuses(new_session) == {PENDING: 0, PROCESSING: 1, PROCESSED: 2, FAILED: 0}


def test_an_event_whose_worker_dies_on_every_attempt_is_dead_lettered(new_session):
    emit(new_session, 1)
    for _ in range(3):
        with new_session() as session:
            assert len(outbox.claim_batch(session, batch_size=1, lease_seconds=600, max_attempts=3)) == 1
            expire_leases(session, session.scalars(select(OutboxEvent)).all())
            session.commit()

    assert process(new_session, max_attempts=3).dead_lettered == 1
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
