"""A campaign's record of processing (UK GDPR Article 30), generated from the live
configuration: what personal data it collects and why, the lawful basis, how long it is
kept, the processors (the configured email and SMS providers, the database), who sees
what, and the security measures in force. A starting point for the council's DPIA: the
page and the Markdown file are the same sections, so neither can drift from the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import current_app

from experiments.design import LAWFUL_BASES
from nudge_app.db import utcnow
from nudge_app.models import Campaign
from nudge_app.services.consent import counts_by_version

CHANNEL_PROCESSORS = {
    "notify": "GOV.UK Notify (Government Digital Service), {NOTIFY_BASE_URL}",
    "smtp": "the SMTP relay at {SMTP_HOST}:{SMTP_PORT}",
    "file": "none: messages are written to a local file (development only, nothing is sent)",
    "fakelog": "none: a test stand-in (nothing is sent)",
}


@dataclass
class Section:
    heading: str
    items: list[str] = field(default_factory=list)


@dataclass
class ProcessingRecord:
    title: str
    generated_at: str
    sections: list[Section]

    def to_markdown(self) -> str:
        lines = [
            f"# {self.title}",
            "",
            f"Generated {self.generated_at} from the live configuration.",
            "",
        ]
        for section in self.sections:
            lines += [f"## {section.heading}", ""]
            lines += [f"- {item}" for item in section.items]
            lines.append("")
        return "\n".join(lines)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname or "a local file"


def build(campaign: Campaign) -> ProcessingRecord:
    config = current_app.config
    council = campaign.council
    listed = campaign.enrolment_mode == "list"
    steps = len(campaign.follow_up_steps)
    email = (config.get("EMAIL_CHANNEL") or "file").lower()
    sms = (config.get("SMS_CHANNEL") or "file").lower()
    database = str(config.get("SQLALCHEMY_DATABASE_URI") or "")
    kind = database.split(":", 1)[0].split("+", 1)[0]
    versions = counts_by_version(campaign)
    force_https = bool(config.get("FORCE_HTTPS"))
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "memory://").split(":", 1)[0]
    sections = [
        Section(
            "Controller and campaign",
            [
                f"Controller: {council.name}.",
                f"Campaign: {campaign.name} ({campaign.slug}), status {campaign.status}, "
                f"policy domain {campaign.policy_domain}, {campaign.enrolment_mode} enrolment.",
                f"Activity: {campaign.activity_name}"
                + (f", {campaign.activity_when}" if campaign.activity_when else "")
                + (f", {campaign.activity_where}" if campaign.activity_where else "")
                + ".",
            ],
        ),
        Section(
            "Purposes",
            [
                f"Inviting residents to take part in {campaign.activity_name}.",
                "Evaluating, by a randomized trial, which invitation helps more residents take "
                f"part (primary outcome: {(campaign.analysis_plan or {}).get('primary_outcome', 'joined')}), "
                "overall and by age and self-efficacy.",
            ],
        ),
        Section(
            "Lawful basis", [LAWFUL_BASES.get(campaign.lawful_basis, campaign.lawful_basis) + "."]
        ),
        Section(
            "Data subjects",
            [
                "Residents the council lists for this campaign (imported)."
                if listed
                else "Residents the council invites, and anyone who uses the campaign's open link.",
            ],
        ),
        Section(
            "Personal data collected",
            [
                "Contact details: first name, email address, phone number"
                + (
                    " (from the council's list)"
                    if listed
                    else " (an email only if the person gives one)"
                )
                + "; the council's own reference for the person.",
                "Neighbourhood and household (for clustered randomization), preferred language.",
                "Baseline answers: age or year of birth, gender, three self-efficacy items (1 to 5), "
                "individual co-production already done.",
                "The invitation (arm) assigned, page views, the pledge to take part, follow-up "
                "survey answers, opt-out and withdrawal.",
                f"Messages: the invitation and at most {steps} follow-up message(s) per person, "
                "with delivery status.",
                "Consent: status, time, lawful basis and the version of the consent text read "
                + (
                    "("
                    + ", ".join(f"version {v['number']}: {v['participants']}" for v in versions)
                    + ")."
                    if versions
                    else "(no consent recorded yet)."
                ),
            ],
        ),
        Section(
            "Retention",
            [
                f"Names, contact details and references are erased {campaign.retention_days} day(s) "
                "after the campaign closes (the scheduler's daily retention run; "
                "`nudge retention run`)."
                + (
                    f" The campaign closed on {campaign.closed_at:%Y-%m-%d}."
                    if campaign.closed_at
                    else ""
                ),
                "Erased contacts are kept only as keyed hashes on the council's suppression list, "
                "so no later list reaches them again.",
                "Pseudonymous trial data (arm, strata, answers, outcomes) is kept for the council's "
                "evaluation of this campaign.",
                "On withdrawal a person's details are erased at once; on request everything "
                "about them is deleted.",
            ],
        ),
        Section(
            "Processors",
            [
                "Email: " + CHANNEL_PROCESSORS.get(email, email).format(**config) + ".",
                "SMS: " + CHANNEL_PROCESSORS.get(sms, sms).format(**config) + ".",
                f"Database: {kind} at {_host(database) if kind != 'sqlite' else 'a local file'}.",
            ],
        ),
        Section(
            "Recipients",
            [
                f"Staff of {council.name}: admins and campaign designers see contact details; "
                "evaluators see pseudonymous data and reports only.",
                "Nobody outside the council and the processors above; no transfer outside the UK "
                "by the platform.",
            ],
        ),
        Section(
            "Security measures",
            [
                "HTTPS enforced with HSTS."
                if force_https
                else "HTTPS is NOT enforced by the app: "
                "set NUDGE_FORCE_HTTPS or terminate TLS at the proxy.",
                "Staff passwords hashed with Argon2id, at least 12 characters, common passwords "
                "refused; sessions revocable on the server, ended after "
                f"{config.get('SESSION_IDLE_MINUTES')} idle minutes and {config.get('SESSION_MAX_HOURS')} hours.",
                "Roles per council; other councils' data answers 404; every change, sign-in, "
                "export, subject-access request and erasure is in the audit log.",
                "Personal links are 256-bit tokens stored only as hashes; API tokens are stored hashed.",
                "Content-Security-Policy, frame and referrer protection, no caching of pages and exports.",
                f"Rate limits on public pages (counted in {storage}); failed sign-ins throttled.",
                "Exports neutralise spreadsheet formulas; database files and reports are owner-only.",
            ],
        ),
        Section(
            "Rights of the people concerned",
            [
                "Withdraw or stop messages: links on every page and in every message.",
                "Access: the console's subject-access page or `nudge participants subject-access`.",
                "Erasure: withdrawal erases at once; the retention run erases everyone at the end.",
            ],
        ),
    ]
    return ProcessingRecord(
        title=f"Record of processing: {campaign.name}",
        generated_at=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        sections=sections,
    )
