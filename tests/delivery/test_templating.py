"""Message templates: only the allowed placeholders, no attribute or index access, escaping."""

from __future__ import annotations

import pytest

from nudge_app.templating import TemplateError, check, html_paragraphs, render, render_html


def test_render_fills_allowed_placeholders_and_keeps_literal_braces():
    text = render(
        "Dear {first_name}, join {activity} {{now}}", {"first_name": "Ann", "activity": "x"}
    )
    assert text == "Dear Ann, join x {now}"


def test_missing_values_render_empty():
    assert render("Hi {first_name}!", {}) == "Hi !"


@pytest.mark.parametrize(
    "template",
    [
        "{first_name.__class__}",
        "{first_name[0]}",
        "{first_name!r}",
        "{first_name:>30}",
        "{secret_key}",
        "{0}",
        "{}",
        "unbalanced {",
    ],
)
def test_unsafe_or_unknown_placeholders_are_refused(template):
    with pytest.raises(TemplateError):
        render(template, {"first_name": "Ann"})
    with pytest.raises(TemplateError):
        render_html(template, {"first_name": "Ann"})


def test_render_html_escapes_text_and_values():
    out = render_html("<b>{first_name}</b> & co", {"first_name": "<script>x</script>"})
    assert str(out) == "&lt;b&gt;&lt;script&gt;x&lt;/script&gt;&lt;/b&gt; &amp; co"


def test_html_paragraphs():
    out = html_paragraphs("a <1>\nb\n\nc")
    assert str(out) == "<p>a &lt;1&gt;<br>\nb</p>\n<p>c</p>"


def test_check_lists_names():
    assert check("{link} and {opt_out_link}") == ["link", "opt_out_link"]
