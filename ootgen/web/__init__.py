"""Pages ootgen renders from Jinja2 templates with autoescape: the run report, the review page, the dataset card.

Model output reaches a page only through `markdown.render` (raw HTML disabled, code highlighted by
Pygments) or through autoescaping, so markup a model wrote is shown as text and never runs.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def html_environment() -> jinja2.Environment:
    """Templates for HTML pages: autoescape on, undefined names are errors."""
    from .markdown import highlight_css, render

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["markdown"] = render
    env.globals["highlight_css"] = highlight_css
    return env


def text_environment() -> jinja2.Environment:
    """Templates for Markdown documents (the dataset card): no HTML escaping, undefined names are errors."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=False,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)
