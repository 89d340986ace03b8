"""Showing untrusted text (model output, prompts) as markdown with every HTML tag escaped."""

from __future__ import annotations

import html
import re

# Code fences and inline code keep their characters (markdown shows them literally); everywhere else
# '<', '>' and '&' are escaped so a model answer containing <script> or <img onerror=...> stays text.
_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]*`)", re.S)


def escape_markdown_html(text: str) -> str:
    parts = _CODE.split(text or "")
    return "".join(part if index % 2 else html.escape(part, quote=False) for index, part in enumerate(parts))
