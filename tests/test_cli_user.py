"""`nudge user create` and `nudge token create|revoke` against the test database."""

from __future__ import annotations

from sqlalchemy import select

from nudge_app.cli import main
from nudge_app.models import ApiToken, AuditEntry, StaffUser
from nudge_app.security import sha256_hex, verify_password


def invoke(runner, db_session, args, input=None):
    """Run `nudge ARGS` after ending the test's own transaction (SQLite has one writer)."""
    db_session.commit()
    return runner.invoke(main, args, input=input)


def test_user_create_with_password_stdin(runner, council, db_session):
    result = invoke(
        runner,
        db_session,
        [
            "user",
            "create",
            "--council",
            council.slug,
            "--email",
            "Ann@Example.org",
            "--role",
            "designer",
            "--password-stdin",
        ],
        input="correct horse battery\n",
    )
    assert result.exit_code == 0, result.output
    db_session.expire_all()
    user = db_session.scalar(select(StaffUser).where(StaffUser.email == "ann@example.org"))
    assert user is not None and user.role == "designer" and user.council_id == council.id
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "correct horse battery")
    assert db_session.scalar(select(AuditEntry).where(AuditEntry.action == "user.create"))


def test_user_create_prompts_without_flag(runner, council, db_session):
    result = invoke(
        runner,
        db_session,
        [
            "user",
            "create",
            "--council",
            council.slug,
            "--email",
            "b@example.org",
            "--role",
            "evaluator",
        ],
        input="long enough pw\nlong enough pw\n",
    )
    assert result.exit_code == 0, result.output
    db_session.expire_all()
    assert db_session.scalar(select(StaffUser).where(StaffUser.email == "b@example.org"))


def test_user_create_bad_input_is_one_clear_message(runner, council, db_session):
    bad_council = invoke(
        runner,
        db_session,
        [
            "user",
            "create",
            "--council",
            "nowhere",
            "--email",
            "a@example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input="correct horse battery\n",
    )
    assert bad_council.exit_code != 0 and "no council" in bad_council.output
    short = invoke(
        runner,
        db_session,
        [
            "user",
            "create",
            "--council",
            council.slug,
            "--email",
            "a@example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input="short\n",
    )
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    assert "Traceback" not in short.output
    bad_email = invoke(
        runner,
        db_session,
        [
            "user",
            "create",
            "--council",
            council.slug,
            "--email",
            "not-an-email",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input="correct horse battery\n",
    )
    assert bad_email.exit_code != 0 and "not a valid email" in bad_email.output
    ok = invoke(
        runner,
        db_session,
        [
            "user",
            "create",
            "--council",
            council.slug,
            "--email",
            "a@example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input="correct horse battery\n",
    )
    assert ok.exit_code == 0
    dup = invoke(
        runner,
        db_session,
        [
            "user",
            "create",
            "--council",
            council.slug,
            "--email",
            "A@example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input="correct horse battery\n",
    )
    assert dup.exit_code != 0 and "already has a user" in dup.output


def test_token_create_prints_token_alone_on_last_line_and_revoke(runner, council, db_session):
    result = invoke(
        runner, db_session, ["token", "create", "--council", council.slug, "--name", "crm"]
    )
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("nudge_") and " " not in secret
    db_session.expire_all()
    token = db_session.scalar(select(ApiToken).where(ApiToken.name == "crm"))
    assert token.token_hash == sha256_hex(secret)
    assert secret not in str(token.__dict__)
    listed = invoke(runner, db_session, ["token", "list", "--council", council.slug])
    assert "crm" in listed.output and secret not in listed.output
    revoked = invoke(runner, db_session, ["token", "revoke", "--council", council.slug, "crm"])
    assert revoked.exit_code == 0, revoked.output
    db_session.expire_all()
    assert db_session.get(ApiToken, token.id).revoked_at is not None
