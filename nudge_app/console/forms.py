"""Flask-WTF form classes of the console's account and data-protection pages: they keep
what was typed and carry an error per field (shown in the GOV.UK pattern, `_form.html`)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange

from experiments.design import LAWFUL_BASES, MAX_RETENTION_DAYS
from nudge_app.passwords import MAX_LENGTH


class PasswordChangeForm(FlaskForm):
    current = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password"), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    new = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password"), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "New password again",
        validators=[
            DataRequired("Enter the new password again"),
            EqualTo("new", "The two new passwords differ: type the same one twice"),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class SubjectAccessForm(FlaskForm):
    contact = StringField(
        "Email address or phone number",
        validators=[DataRequired("Enter the person's email address or phone number")],
        render_kw={"autocomplete": "off"},
    )


class DataProtectionForm(FlaskForm):
    retention_days = IntegerField(
        "Keep names and contact details for (days after the campaign closes)",
        validators=[
            InputRequired("Enter a number of days (0 erases them when the campaign closes)"),
            NumberRange(
                0, MAX_RETENTION_DAYS, f"Enter a number of days from 0 to {MAX_RETENTION_DAYS}"
            ),
        ],
    )
    lawful_basis = SelectField(
        "Lawful basis (UK GDPR Article 6)",
        choices=[SelectChoice(key, label) for key, label in LAWFUL_BASES.items()],
        validators=[DataRequired("Choose the lawful basis")],
    )
