"""The `nudge` command line: a click group whose subcommands are imported only when run.

Each subcommand lives in its own module exposing `command` (a click Command or Group).
Commands that need no web app (validate, randomize, analyze, power, evidence) never import
Flask, so `nudge --help` and the science commands start fast.
"""

from __future__ import annotations

import importlib

import click

# name -> (module, short help). The help is here so `nudge --help` imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("nudge_app.cli.serve", "Start the web app on a production WSGI server."),
    "db": ("nudge_app.cli.db", "Database schema: upgrade, current revision."),
    "council": ("nudge_app.cli.council", "Create and list councils."),
    "campaign": ("nudge_app.cli.campaign", "Validate, create, export and run campaigns."),
    "user": ("nudge_app.cli.user", "Create staff users."),
    "token": ("nudge_app.cli.token", "Create and revoke API tokens."),
    "participants": ("nudge_app.cli.participants", "Import participants, write their links."),
    "randomize": ("nudge_app.cli.randomize", "Randomize a CSV list into arms (no database)."),
    "analyze": ("nudge_app.cli.analyze", "Analyse a trial from a CSV file (no database)."),
    "analyse": ("nudge_app.cli.analyze", "The same as analyze."),
    "power": ("nudge_app.cli.power", "Power of a campaign design file by simulation."),
    "report": ("nudge_app.cli.report", "Write a campaign's effect report from the database."),
    "retention": ("nudge_app.cli.retention", "Erase contacts past their retention period."),
    "scheduler": ("nudge_app.cli.scheduler", "Run the follow-up scheduler process."),
    "evidence": (
        "nudge_app.cli.evidence",
        "Pool effects across campaigns (random-effects meta-analysis).",
    ),
    "demo": ("nudge_app.cli.demo", "Run a whole simulated campaign, then serve the platform."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, short_help = COMMANDS[cmd_name]
        command = importlib.import_module(module_name).command
        command.short_help = command.short_help or short_help
        return command


class _ListingGroup(LazyGroup):
    """Lists commands from COMMANDS, so `nudge --help` imports none of them."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_ListingGroup)
@click.version_option(package_name="nudge")
def main() -> None:
    """nudge: randomized trials of nudge messages toward collective co-production."""


if __name__ == "__main__":  # pragma: no cover
    main()
