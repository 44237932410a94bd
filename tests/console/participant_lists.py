"""The console's participant list as the import tests use it: upload a CSV through the
page, download the export and read it back."""

from __future__ import annotations

import csv
import io


def upload_participants(client, campaign, token: str, text: str):
    """POST `text` as the campaign's participant file, as the upload form does."""
    return client.post(
        f"/campaigns/{campaign.slug}/participants",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "people.csv")},
        content_type="multipart/form-data",
    )


def export_participants(client, campaign) -> tuple[str, list[dict[str, str]]]:
    """The campaign's participant export as downloaded, and its rows as dicts."""
    export = client.get(f"/campaigns/{campaign.slug}/participants.csv").get_data(as_text=True)
    return export, list(csv.DictReader(io.StringIO(export, newline="")))
