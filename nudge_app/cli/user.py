"""`nudge user create|list`: staff accounts of a council, created without a browser."""

from __future__ import annotations

import sys

import click

from nudge_app.cli.common import app_context, council_or_fail


@click.group("user")
def command() -> None:
    """Create and list staff users."""


@command.command("create")
@click.option("--council", "council_slug", required=True, help="The council's slug.")
@click.option("--email", required=True, help="The user's email address (their login).")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "designer", "evaluator"]),
    help="admin: users, tokens, everything; designer: campaigns; evaluator: reports.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (no prompt).",
)
def create(council_slug: str, email: str, role: str, password_stdin: bool) -> None:
    """Create a staff user; prompts for the password unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    from nudge_app.services.staff import create_user

    with app_context():
        user = create_user(council_or_fail(council_slug), email, role, password)
        click.echo(f"created {user.role} {user.email} in council {council_slug}")


@command.command("list")
@click.option("--council", "council_slug", required=True, help="The council's slug.")
def list_users(council_slug: str) -> None:
    """List a council's staff users."""
    from nudge_app.services.staff import council_users

    with app_context(commit=False):
        for user in council_users(council_or_fail(council_slug).id):
            state = "active" if user.is_active else "inactive"
            click.echo(f"{user.email}\t{user.role}\t{state}")
