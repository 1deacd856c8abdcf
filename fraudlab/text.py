"""Data is text: escape data-derived strings for the places that would otherwise read them as markup.

>>> print(markdown_literal("![x](evil.png) **bold** <b>"))
\\!\\[x\\]\\(evil\\.png\\) \\*\\*bold\\*\\* &lt;b&gt;
"""
from __future__ import annotations

import html
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~:$])")


def markdown_literal(value: object) -> str:
    """A string that Streamlit's Markdown shows exactly as given: no link, image, emphasis, HTML or LaTeX."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False))


def p_text(p: float | None) -> str:
    """A p-value as people read it: '< 0.001' for tiny ones, two significant digits otherwise.

    >>> p_text(6e-22), p_text(0.0312), p_text(None)
    ('< 0.001', '0.031', '')
    """
    if p is None or p != p:
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.2g}"
