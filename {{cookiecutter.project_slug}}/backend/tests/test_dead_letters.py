"""Dead letters are listed, replayed once fixed, and keep their history."""

import uuid

import pytest
from sqlalchemy import insert
from test_outbox import drain, effects, statuses

from {{ cookiecutter.package_name }} import dead_letters, outbox
from {{ cookiecutter.package_name }}.models import FAILED, PROCESSED, Order, OutboxEvent
from {{ cookiecutter.package_name }}.orders import HANDLERS, ORDER_CREATED


def poison(new_session) -> tuple[uuid.UUID, uuid.UUID]:
    """An order.created event for an order that does not exist yet: its
    handler fails (foreign key violation) until the order is written."""
    order_id = uuid.uuid4()
    with new_session() as session:
        event = outbox.record_event(session, ORDER_CREATED, {"order_id": str(order_id)})
        session.commit()
    return event.id, order_id


def test_a_fixed_dead_letter_is_replayed_and_processed_once_its_error_kept(new_session):
    event_id, order_id = poison(new_session)
    assert drain(new_session, max_attempts=1).dead_lettered == 1
    with new_session() as session:
        [dead] = dead_letters.newest(session)
        assert (dead.id, dead.attempts, dead.failed_at is not None) == (event_id, 1, True)
        assert "ForeignKeyViolation" in dead.last_error
        error = dead.last_error
    with new_session() as session:  # the bug is fixed: the order now exists
        session.execute(insert(Order).values(id=order_id, reference="fixed"))
        session.commit()

    with new_session() as session:
        assert dead_letters.replay(session, [event_id]) == [event_id]
        session.commit()
    with new_session() as session:
        event = session.get(OutboxEvent, event_id)
        assert (event.status, event.attempts, event.last_error, event.failed_at) == ("pending", 0, None, None)
        [kept] = dead_letters.history(session, event_id)
        assert (kept.action, kept.attempts, kept.error, kept.failed_at is not None) == ("replayed", 1, error, True)

    assert drain(new_session, HANDLERS).processed == 1
    assert statuses(new_session)[PROCESSED] == 1
    assert effects(new_session) == 1


def test_replay_all_puts_back_every_dead_letter_and_nothing_else(new_session):
    for _ in range(3):
        poison(new_session)
    drain(new_session, max_attempts=1)
    with new_session() as session:
        outbox.record_event(session, "not-dead", {})
        session.commit()
    with new_session() as session:
        assert len(dead_letters.replay(session)) == 3
        session.commit()
    assert statuses(new_session)[FAILED] == 0


def test_replaying_an_event_that_is_not_a_dead_letter_replays_nothing(new_session):
    event_id, _ = poison(new_session)
    drain(new_session, max_attempts=1)
    unknown = uuid.uuid4()
    with new_session() as session, pytest.raises(LookupError, match=str(unknown)):
        dead_letters.replay(session, [event_id, unknown])
    assert statuses(new_session)[FAILED] == 1


def test_the_newest_dead_letters_come_first(new_session):
    first, _ = poison(new_session)
    drain(new_session, max_attempts=1)
    second, _ = poison(new_session)
    drain(new_session, max_attempts=1)
    with new_session() as session:
        assert [event.id for event in dead_letters.newest(session, 1)] == [second]
        assert [event.id for event in dead_letters.newest(session)] == [second, first]
