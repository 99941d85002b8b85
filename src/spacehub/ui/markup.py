"""Markdown and code as HTML for the pages: a repo card's README (CommonMark plus tables, raw HTML off, so a README
cannot inject markup, and markdown-it's link check drops ``javascript:`` and similar URLs), and source files
highlighted by Pygments (which escapes the text it wraps in ``<span class>``; the colours are static/highlight.css)."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer_for_filename
from pygments.util import ClassNotFound

MAX_HIGHLIGHTED = 256 * 1024  # past this a file is shown as plain text (Pygments is linear but not free)
_FORMATTER = HtmlFormatter(nowrap=True)


def _fence(code: str, lang: str, _attrs: str) -> str:
    """A fenced block's body, highlighted when its language is known (markdown-it wraps it in <pre><code>)."""
    try:
        lexer = get_lexer_by_name(lang.strip().split()[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    return highlight(code, lexer, _FORMATTER) if lexer is not None else ""  # "": markdown-it escapes it itself


_MARKDOWN = MarkdownIt("commonmark", {"html": False, "highlight": _fence}).enable("table").enable("strikethrough")


def markdown(text: str) -> Markup:
    return Markup(_MARKDOWN.render(text))


def highlighted(path: str, text: str) -> Markup:
    """``text`` as HTML, highlighted by the lexer its file name calls for (escaped plain text otherwise)."""
    if len(text) <= MAX_HIGHLIGHTED:
        try:
            lexer = guess_lexer_for_filename(path, text)
        except ClassNotFound:
            pass
        else:
            return Markup(highlight(text, lexer, _FORMATTER))
    return escape(text)
