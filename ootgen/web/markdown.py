"""Model text as HTML: CommonMark (markdown-it-py) with raw HTML off, fenced code highlighted by Pygments.

Raw HTML in the text is escaped by the parser (html=False), link targets are checked by markdown-it's
validateLink (no javascript: or data: URLs), and highlighted code is built by Pygments from escaped tokens.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

# Fence labels models use for the decomp's languages, and what Pygments calls them.
_LANGUAGE_ALIASES = {"": "c", "h": "c", "cpp": "c", "asm": "mips", "s": "mips", "mips": "mips", "gas": "gas",
                     "sh": "bash", "shell": "bash", "console": "bash", "make": "make", "makefile": "make"}
_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, language: str, _attrs: str) -> str:
    name = _LANGUAGE_ALIASES.get(language.lower(), language.lower())
    try:
        lexer = get_lexer_by_name(name)
    except ClassNotFound:
        return ""  # markdown-it then escapes the code itself
    body = highlight(code, lexer, _FORMATTER)
    return f'<pre class="highlight"><code class="language-{lexer.aliases[0]}">{body}</code></pre>\n'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                     "highlight": _highlight}).enable("table").enable("strikethrough")


def render(text: str | None) -> Markup:
    """Markdown -> safe HTML (Markup, so autoescaping templates insert it as is)."""
    return Markup(_parser().render(text or ""))


def highlight_css() -> Markup:
    """The Pygments colour rules for highlighted code blocks."""
    return Markup(HtmlFormatter(style="default").get_style_defs(".highlight"))
