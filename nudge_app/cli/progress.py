"""Progress of a long computation on stderr: click's bar on a terminal, or, when asked for
elsewhere (`--progress` into a log file), one plain line at every tenth of the way."""

from __future__ import annotations

import sys

import click


class Progress:
    """`update(done, total)` as the computation advances; `close()` when it ends."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.done = total, label, 0
        self.tty = sys.stderr.isatty()
        self.bar = (
            click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
            if self.tty
            else None
        )
        self.next_line = 0.1

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.done)
        elif total and done / total >= self.next_line - 1e-12:
            click.echo(f"{self.label}: {done}/{total}", err=True)
            while self.next_line <= done / total + 1e-12:
                self.next_line += 0.1
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


def progress(total: int, label: str, wanted: bool | None) -> Progress | None:
    """A Progress when `wanted` (None: only when stderr is a terminal), else None."""
    show = sys.stderr.isatty() if wanted is None else wanted
    return Progress(total, label) if show and total > 0 else None
