"""Showing untrusted text (model output, prompts, imported pairs) in a Markdown component as plain text.

Model output reaches other users' screens, so no element may come from the text: no HTML, no links, images or
autolinks (an image would be fetched by every viewer's browser), no emphasis, lists or headings, no LaTeX or
diagrams (Gradio's markdown renders `$$...$$` and mermaid fences). The text is shown as written, line by line;
code spans and code fences (the one formatting worth keeping) are shown as code.

How: each paragraph is one source line (line breaks as <br>), so the only block syntax markdown could see is
at a paragraph's first character, which is escaped when it is punctuation. Every character that can start
inline markup anywhere (HTML, entities, links, code, emphasis, autolinks, LaTeX, backslash escapes) is a
character reference (`&lt;`, `&#91;`, ...), and a character reference never starts markup. Code is written
here as <code> and <pre><code>. Other punctuation stays as it is, so a copied answer (the Arena's copy button
copies this text) stays readable.
"""

from __future__ import annotations

import re

_NAMED = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}  # named, so escaped HTML stays readable in the source
# markup anywhere in a line: tags and entities, links and images ([ ]), code, emphasis and strikethrough,
# backslash escapes, LaTeX ($), e-mail autolinks (@), URL autolinks (the ':' of '://', the '.' of 'www.')
_INLINE = re.compile(r"[<>&\[\]\\`*_~$@]|:(?=//)|(?<=www)\.", re.IGNORECASE)
# what a block can start with: punctuation (#, -, +, *, >, =, |, ...) or an ordered-list number (1. or 1))
_BLOCK_START = re.compile(r"^(?:[!-/:-@\[-`{-~]|\d{1,9}[.)])")
# code blocks are HTML blocks of their own, which markdown leaves alone: only tags and entities, and $$ (Gradio
# cuts $$...$$ out of the whole text before markdown sees it, so a $$ before the block, in text written around
# this one, and a $$ inside it would hide the <pre>; the app's components use the $$ delimiter only)
_PRE = re.compile(r"[<>&]|\$(?=\$)|(?<=\$)\$")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_BACKTICKS = re.compile(r"`+")


def _reference(char: str) -> str:
    return _NAMED.get(char) or f"&#{ord(char)};"


def _inline(text: str) -> str:
    """Text inside a paragraph: every character that could start markup as a character reference."""
    return _INLINE.sub(lambda m: _reference(m.group()), text)


def _code_spans(line: str) -> str:
    """One line of prose: code spans (CommonMark: a run of n backticks up to the next run of exactly n, not
    after a backslash) as <code>, the rest as text."""
    out, position, start = [], 0, 0
    while True:
        opener = _BACKTICKS.search(line, position)
        if opener is None:
            break
        escaped = opener.start() > 0 and line[opener.start() - 1] == "\\"
        closer = (
            None
            if escaped
            else next(
                (m for m in _BACKTICKS.finditer(line, opener.end()) if len(m.group()) == len(opener.group())), None
            )
        )
        if closer is None:  # a literal backtick (escaped, or never closed): only its first one is consumed
            position = opener.start() + 1
            continue
        code = line[opener.end() : closer.start()]
        if code.strip(" ") and code.startswith(" ") and code.endswith(" "):
            code = code[1:-1]
        out += [_inline(line[start : opener.start()]), f"<code>{_inline(code)}</code>"]
        position = start = closer.end()
    out.append(_inline(line[start:]))
    return "".join(out)


def _prose_line(line: str) -> str:
    stripped = line.lstrip(" \t")  # indentation shown as non-breaking spaces: never an indented code block
    indent = line[: len(line) - len(stripped)].replace("\t", "    ")
    return "&nbsp;" * len(indent) + _code_spans(stripped.rstrip())


def _first_line(line: str) -> str:
    """A paragraph's first line, where markdown looks for a block (heading, list, quote, rule, fence, table)."""
    start = _BLOCK_START.match(line)
    if start is None or line.startswith(("&", "<")):  # a reference or a tag written here: never a block
        return line
    return line[: start.end() - 1] + _reference(line[start.end() - 1]) + line[start.end() :]


def _paragraphs(lines: list[str]) -> list[str]:
    """Prose: paragraphs at blank lines; each line break kept as <br> (one source line per paragraph, so a
    renderer that turns newlines into breaks adds none)."""
    blocks, current = [], []
    for line in lines + [""]:
        if line.strip():
            current.append(_prose_line(line))
        elif current:
            blocks.append("<br>".join([_first_line(current[0]), *current[1:]]))
            current = []
    return blocks


def _blocks(text: str) -> list[str]:
    lines, blocks, prose, index = text.split("\n"), [], [], 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None or (fence.group(2)[0] == "`" and "`" in fence.group(3)):
            prose.append(lines[index])
            index += 1
            continue
        blocks += _paragraphs(prose)
        prose, indent, mark = [], len(fence.group(1)), fence.group(2)
        closing = re.compile(rf"^ {{0,3}}{re.escape(mark[0])}{{{len(mark)},}}[ \t]*$")
        code, index = [], index + 1
        while index < len(lines) and not closing.match(lines[index]):
            line = lines[index]
            code.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            index += 1
        index += 1  # the closing fence (or past the end: an unclosed fence runs to the end, as in CommonMark)
        blocks.append(f"<pre><code>{_PRE.sub(lambda m: _reference(m.group()), chr(10).join(code))}</code></pre>")
    return blocks + _paragraphs(prose)


def escape_markdown_html(text: str) -> str:
    """`text` as markdown that renders as that text, with code spans and fences as code, and nothing else."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    return "\n\n".join(_blocks(text))
