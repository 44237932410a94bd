"""Safe rendering of officer-written message templates: `{name}` placeholders only.

Templates come from campaign designs (arms and follow-up steps). Only the names in
`experiments.design.PLACEHOLDERS` are filled in; attribute access (`{a.b}`), indexing
(`{a[0]}`), conversions (`{a!r}`) and format specs (`{a:>10}`) are refused, so a template
can never reach into Python objects. `{{` and `}}` give literal braces.

`render` gives plain text (emails' text part, SMS); `render_html` escapes both the
template's own text and every value, for HTML pages and HTML email parts.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import lru_cache

from markupsafe import Markup, escape

from experiments.design import PLACEHOLDERS

_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A template uses a placeholder that is not allowed or is malformed."""


@lru_cache(maxsize=1024)
def _parts(template: str) -> tuple[tuple[str, str | None], ...]:
    """(literal text, placeholder name or None) pieces, checked; cached, since dispatch
    renders the same few templates for every message of a batch."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise TemplateError(f"malformed template: {exc}") from None
    pieces = []
    for literal, name, spec, conversion in parsed:
        if name is not None:
            if not name.isidentifier() or spec or conversion:
                raise TemplateError(
                    f"malformed placeholder {{{name}}}: use plain names like {{first_name}}"
                )
            if name not in PLACEHOLDERS:
                raise TemplateError(
                    f"unknown placeholder {{{name}}}: allowed are "
                    + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                )
        pieces.append((literal, name))
    return tuple(pieces)


def _value(context: Mapping[str, object], name: str) -> str:
    value = context.get(name)
    return "" if value is None else str(value)


@lru_cache(maxsize=1024)
def compiled(template: str) -> tuple[str, tuple[str, ...]]:
    """The template checked once and turned into a `str.format` pattern with nothing but
    plain `{name}` fields of allowed names (its own braces doubled), with the names it
    uses: `pattern.format_map(values)` then fills it in one C call, for dispatch, which
    renders the same few templates for every message. Cached by the text itself, so an
    edited template is compiled afresh."""
    pattern = []
    for literal, name in _parts(template or ""):
        pattern.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is not None:
            pattern.append("{" + name + "}")
    return "".join(pattern), tuple(n for _, n in _parts(template or "") if n is not None)


def render(template: str, context: Mapping[str, object]) -> str:
    """The template as plain text with its placeholders filled (missing values are empty)."""
    pattern, names = compiled(template or "")
    return pattern.format_map({name: _value(context, name) for name in names})


def render_html(template: str, context: Mapping[str, object]) -> Markup:
    """The template rendered and HTML-escaped: literal text and values alike."""
    out = []
    for literal, name in _parts(template or ""):
        out.append(str(escape(literal)))
        if name is not None:
            out.append(str(escape(_value(context, name))))
    return Markup("".join(out))


def html_paragraphs(text: str) -> Markup:
    """Plain text (e.g. from `render`) as escaped HTML paragraphs; single newlines are <br>."""
    blocks = [b.strip() for b in (text or "").replace("\r\n", "\n").split("\n\n")]
    return Markup("\n").join(
        Markup("<p>")
        + Markup("<br>\n").join(escape(line) for line in b.split("\n"))
        + Markup("</p>")
        for b in blocks
        if b
    )


def check(template: str) -> list[str]:
    """The placeholder names a template uses; raises TemplateError if any is not allowed."""
    return [name for _, name in _parts(template or "") if name is not None]
