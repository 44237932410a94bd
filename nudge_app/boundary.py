"""The one transaction boundary: a request, a scheduler job or a CLI command commits once,
at its end, or rolls back; the services it calls only flush.

- A request: `TransactionalFlask.dispatch_request` runs the view and commits if its
  response is a success or a redirect (status below 400), and rolls back on an error
  response or an exception; the exception then goes on to the error handlers, where
  `nudge_app.app` turns a `DomainError` into a page or JSON in one place.
- A scheduler job or a CLI command: `with unit_of_work():` commits when the block ends
  and rolls back if it raises.
- `commit_now()` and `discard()` are the only ways to end a transaction earlier, each for
  a reason its caller states: a write that must stand whatever happens next (a failed
  sign-in, a message marked `sending` before the provider is called), or an attempt
  whose writes must go although the answer is not an error (a redirect with a message).

On SQLite the session keeps the begin mode of its context (`nudge_app.db`): IMMEDIATE for
the console, API, CLI and scheduler; WRITE for participant pages, whose reads run outside
a transaction and whose first write takes the lock, held until the boundary commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from nudge_app.extensions import db


class TransactionalFlask(Flask):
    """Flask whose every view runs inside its request's one transaction (as indico's
    `RH.process` does): commit on a response below 400, roll back otherwise."""

    def dispatch_request(self):
        try:
            response = self.make_response(super().dispatch_request())
            if response.status_code < 400:
                db.session.commit()
            else:
                db.session.rollback()
        except BaseException:
            db.session.rollback()
            raise
        return response


@contextmanager
def unit_of_work(commit: bool = True) -> Iterator[None]:
    """One scheduler job or CLI command: commit when the block ends (or, with
    `commit=False`, for a command that only reads, roll back), roll back if it raises."""
    try:
        yield
        if commit:
            db.session.commit()
        else:
            db.session.rollback()
    except BaseException:
        db.session.rollback()
        raise


def commit_now() -> None:
    """Commit what this request, job or command has written so far, before it ends.

    Only for a write that must stand whatever happens next; the caller says why. The
    boundary still commits (or rolls back) what comes after, at the end.
    """
    db.session.commit()


def discard() -> None:
    """Undo everything this request, job or command has written so far.

    For a failed attempt answered with something other than an error (a redirect with a
    message): the boundary would commit that answer, so the attempt's writes go now.
    """
    db.session.rollback()
