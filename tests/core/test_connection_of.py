"""`db.rows.connection_of`: a session's connection, remembered for its transaction, is what
`session.connection()` gives in every transaction of a session (a later one, a savepoint's,
one after a rollback), and a failed transaction is refused as `session.connection()`
refuses it."""

from __future__ import annotations

import pytest
from lakeline.db.rows import connection_of
from lakeline.instance import Instance
from lakeline.models import Setting
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.orm import Session


def test_each_transaction_of_a_session_gets_its_own_connection(instance: Instance) -> None:
    with Session(instance.sessions.engine) as session:
        first = connection_of(session)
        assert first is session.connection() is connection_of(session)
        assert connection_of(session).execute(text("SELECT 1")).scalar_one() == 1
        session.commit()
        second = connection_of(session)  # a new transaction: asked again
        assert second is session.connection()
        assert second.in_transaction() and not first.in_transaction()
        session.rollback()
        third = connection_of(session)
        assert third is session.connection() and third.in_transaction()
        session.begin_nested()  # a savepoint: the session's own answer there
        assert connection_of(session) is session.connection()
        session.rollback()
        assert connection_of(session) is session.connection()


def test_a_failed_transaction_is_refused_as_the_session_refuses_it(instance: Instance) -> None:
    with Session(instance.sessions.engine) as session:
        connection_of(session)
        session.add(Setting(key="no value", value=None))  # NOT NULL: the flush fails
        with pytest.raises(IntegrityError):
            session.flush()
        with pytest.raises(PendingRollbackError):
            session.connection()
        with pytest.raises(PendingRollbackError):
            connection_of(session)
        session.rollback()
        assert connection_of(session) is session.connection()
