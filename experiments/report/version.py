"""The version of the report's JSON schema (`schema.json`), which the JSON carries and
the HTML page prints."""

SCHEMA_VERSION = "1.4"
