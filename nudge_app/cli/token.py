"""`nudge token create|list|revoke`: a council's API tokens (stored hashed, shown once)."""

from __future__ import annotations

import click

from nudge_app.cli.common import app_context, council_or_fail


@click.group("token")
def command() -> None:
    """Create, list and revoke API tokens."""


@command.command("create")
@click.option("--council", "council_slug", required=True, help="The council's slug.")
@click.option("--name", required=True, help="What the token is for, e.g. 'crm-sync'.")
def create(council_slug: str, name: str) -> None:
    """Create a token; it is printed once, alone on the last line."""
    from nudge_app.services.staff import create_token

    with app_context():
        new = create_token(council_or_fail(council_slug), name)
        click.echo(f"created token {new.token.name!r} ({new.token.prefix}...); store it now:")
        click.echo(new.secret)


@command.command("list")
@click.option("--council", "council_slug", required=True, help="The council's slug.")
def list_tokens(council_slug: str) -> None:
    """List a council's tokens (never the secrets)."""
    from nudge_app.services.staff import council_tokens

    with app_context(commit=False):
        for token in council_tokens(council_or_fail(council_slug).id):
            state = "revoked" if token.revoked_at else "active"
            click.echo(f"{token.id}\t{token.name}\t{token.prefix}...\t{state}")


@command.command("revoke")
@click.option("--council", "council_slug", required=True, help="The council's slug.")
@click.argument("token_ref")
def revoke(council_slug: str, token_ref: str) -> None:
    """Revoke the token with this id, name or prefix; it stops working at once."""
    from nudge_app.services.staff import find_token, revoke_token

    with app_context():
        token = find_token(council_or_fail(council_slug).id, token_ref)
        if token is None:
            raise click.ClickException(f"no token {token_ref!r} in council {council_slug}")
        revoke_token(token)
        click.echo(f"revoked token {token.name!r} ({token.prefix}...)")
