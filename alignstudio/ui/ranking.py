"""The Label tab's ranking mode: K answers (3 or 4) to one prompt, ordered best to worst by keys or by drag.

A prompt set's "answers per prompt" setting (2: the pairwise view as it always was) picks the mode. Keys: the
answer numbers 1..K in order, best first (the last one places itself), Backspace takes back the last pick,
Enter submits; or drag the answers into order. The order lives in the page (a small script, `RANK_JS`) until
Submit sends it: one ranking, stored once under the showing's key, and its K(K-1)/2 pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.labeling.ranking import ShownRanking
from ..services.sampling.answers import RankConfig
from ..services.sampling.prefetch import NothingReady
from .common import feed_config, on
from .render import escape_markdown_html
from .turns import prompt_markdown
from .waiting import POLL_S, POLL_WAIT_S, placeholder, waiting

ANSWER_CHOICES = [2, 3, 4]
WAIT_S = 20.0  # how long a ranking request waits for K answers; then a placeholder, and the timer asks again

# The ranking's page logic. Installed once on page load; reads the list Gradio renders (#rank-order-list), so a
# new ranking (a new data-key) starts with no picks.
RANK_JS = r"""
() => {
  if (window.alignstudioRank) return;
  const st = {key: null, picks: [], dragged: false};
  const list = () => document.getElementById("rank-order-list");
  const sync = () => {
    const el = list();
    if (!el) return null;
    if (el.dataset.key !== st.key) { st.key = el.dataset.key; st.picks = []; st.dragged = false; }
    return el;
  };
  const items = (el) => Array.from(el.querySelectorAll("li[data-idx]"));
  const complete = (el) => st.dragged || st.picks.length >= items(el).length - 1;
  const draw = (el) => {
    const all = items(el);
    const rest = all.filter((li) => !st.picks.includes(+li.dataset.idx)).sort((a, b) => a.dataset.idx - b.dataset.idx);
    const order = st.dragged ? all : [...st.picks.map((i) => all.find((li) => +li.dataset.idx === i)), ...rest];
    order.forEach((li, place) => {
      el.appendChild(li);
      const placed = st.dragged || place < st.picks.length || (complete(el) && place === order.length - 1);
      li.querySelector(".rank-place").textContent = placed ? `#${place + 1}` : "";
      li.classList.toggle("rank-placed", placed);
    });
    const hint = document.getElementById("rank-hint");
    if (hint) hint.textContent = complete(el) ? "Order complete: Enter submits." :
      `Press the number of the ${st.picks.length ? "next best" : "best"} answer (Backspace undoes a pick).`;
  };
  window.alignstudioRank = {
    order: () => { const el = sync(); return el ? items(el).map((li) => li.dataset.idx).join(",") : ""; },
    complete: () => { const el = sync(); return !!el && complete(el); },
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const t = event.target;
    const typing = t && (t.tagName === "TEXTAREA" || t.isContentEditable ||
      (t.tagName === "INPUT" && !["radio", "checkbox"].includes(t.type)));  // a clicked choice keeps the keys
    if (typing) return;
    const el = sync();
    if (!el || el.offsetParent === null) return;
    const n = items(el).length;
    const click = (id) => { const b = document.getElementById(id); if (b && !b.disabled) b.click(); };
    if (/^[1-9]$/.test(event.key) && +event.key <= n) {
      const idx = +event.key - 1;
      if (st.dragged) { st.dragged = false; st.picks = []; }
      if (!st.picks.includes(idx) && st.picks.length < n - 1) st.picks.push(idx);
      draw(el);
    } else if (event.key === "Backspace") {
      st.dragged = false; st.picks.pop(); draw(el);
    } else if (event.key === "Enter") {
      if (complete(el)) click("rank-submit");
    } else if (event.key === "s") { click("rank-skip"); } else if (event.key === "z") { click("rank-undo"); }
    else return;
    event.preventDefault();
  });
  let dragging = null;
  document.addEventListener("dragstart", (e) => {
    const li = e.target.closest && e.target.closest("#rank-order-list li[data-idx]");
    if (!li) return;
    dragging = li; e.dataTransfer.effectAllowed = "move"; e.dataTransfer.setData("text/plain", li.dataset.idx);
  });
  document.addEventListener("dragover", (e) => {
    if (dragging && e.target.closest && e.target.closest("#rank-order-list")) e.preventDefault();
  });
  document.addEventListener("drop", (e) => {
    const over = dragging && e.target.closest && e.target.closest("#rank-order-list li[data-idx]");
    if (!over) { dragging = null; return; }
    e.preventDefault();
    const el = sync();
    const box = over.getBoundingClientRect();
    el.insertBefore(dragging, e.clientY > box.top + box.height / 2 ? over.nextSibling : over);
    st.dragged = true; st.picks = []; dragging = null; draw(el);
  });
}
"""
# Submit sends the order the page holds in place of the hidden order box's value.
SUBMIT_JS = "(order, ...rest) => [window.alignstudioRank ? window.alignstudioRank.order() : order, ...rest]"
CSS = """
#rank-order-list { list-style: none; padding: 0; margin: 0; }
#rank-order-list li { display: flex; gap: 8px; align-items: flex-start; margin: 6px 0; padding: 8px;
  border: 1px solid var(--border-color-primary, #ccc); border-radius: 8px; cursor: grab; }
#rank-order-list li.rank-placed { border-color: var(--color-accent, #f97316); }
#rank-order-list .rank-key { font-weight: 700; min-width: 1.6em; text-align: center; border-radius: 4px;
  border: 1px solid var(--border-color-primary, #ccc); }
#rank-order-list .rank-place { font-weight: 700; min-width: 2em; }
#rank-order-list .rank-text { white-space: pre-wrap; overflow-wrap: anywhere; min-width: 0; flex: 1 1 auto; }
"""


@dataclass
class RankView:
    answers: gr.Radio
    panel: gr.Column
    prompt: gr.Markdown
    answers_html: gr.HTML
    order: gr.Textbox
    submit: gr.Button
    skip: gr.Button
    undo: gr.Button
    status: gr.Markdown
    state: gr.State
    timer: gr.Timer  # on while the view waits for answers (`poll`)


def build_setting() -> gr.Radio:
    return gr.Radio(
        ANSWER_CHOICES,
        value=2,
        label="Answers per prompt (2: a pair; 3 or 4: rank them; set per prompt set)",
        elem_id="label-answers",
    )


def build(answers: gr.Radio) -> RankView:
    with gr.Column(visible=False, elem_id="rank-panel") as panel:
        gr.HTML(f"<style>{CSS}</style>", padding=False)
        prompt = gr.Markdown(elem_id="rank-prompt")
        answers_html = gr.HTML(elem_id="rank-answers")
        order = gr.Textbox(visible=False)
        with gr.Row():
            submit = gr.Button("Submit ranking  [Enter]", variant="primary", elem_id="rank-submit")
            skip = gr.Button("Skip  [s]", size="sm", elem_id="rank-skip")
            undo = gr.Button("Undo last  [z]", size="sm", elem_id="rank-undo")
        status = gr.Markdown(elem_id="rank-status")
    timer = gr.Timer(POLL_S, active=False)
    return RankView(answers, panel, prompt, answers_html, order, submit, skip, undo, status, gr.State({}), timer)


# -- handlers ---------------------------------------------------------------------------------------------------


def _html(shown: ShownRanking) -> str:
    """The answers as a sortable list, numbered as shown; every text through the one escaper."""
    cards = "".join(
        f'<li draggable="true" data-idx="{i}"><span class="rank-key">{i + 1}</span><span class="rank-place"></span>'
        f'<div class="rank-text">{escape_markdown_html(text)}</div></li>'
        for i, text in enumerate(shown.texts)
    )
    hint = "Press the number of the best answer, then the next (Backspace undoes a pick), or drag them into order."
    return f'<p id="rank-hint">{hint}</p><ol id="rank-order-list" data-key="{shown.key}">{cards}</ol>'


def _count(services: Services, annotator: str) -> str:
    return f"**{services.labeling.count(annotator)}** pair labels by {annotator.strip() or 'anonymous'}"


def _present(services: Services, shown: ShownRanking, annotator: str, note: str = "") -> tuple:
    prompt = prompt_markdown("**Prompt**", shown.prompt_set, shown.prompt, shown.history or ())
    status = " · ".join(part for part in (note, _count(services, annotator)) if part)
    return {"shown": asdict(shown)}, prompt, _html(shown), status, gr.Timer(active=False)


def _config(k: int, config: tuple) -> RankConfig:
    base = feed_config("pair", *config)
    return RankConfig(base.prompt_set, base.model_a, base.model_b, base.settings, "pair", int(k))


def _fetch(services: Services, k: int, annotator: str, config: tuple, note: str = "", wait: float = WAIT_S) -> tuple:
    """The next answers on screen, or (none ready in `wait` s) a placeholder while the timer asks again."""
    try:
        shown = services.ranking.next_ranking(_config(k, config), timeout=wait)
    except NothingReady as exc:
        said = placeholder(f"Sampling {k} answers ... ({exc})")
        return waiting() | {"answers": k}, said, "", _count(services, annotator), gr.Timer(active=True)
    return _present(services, shown, annotator, note)


def poll(services: Services, state: dict, annotator: str, _source: str, *config) -> tuple:
    """While the view waits: the answers if they are ready now, else nothing changes."""
    if state.get("shown") or not state.get("waiting"):
        return tuple(gr.skip() for _ in range(5))
    k = state.get("answers") or services.ranking.answers_for(config[0] or "")
    fetched = services.ranking.moved_on.once(
        state["waiting"], lambda: _fetch(services, k, annotator, config, wait=POLL_WAIT_S)
    )
    if fetched is None:
        return tuple(gr.skip() for _ in range(5))
    if fetched[0].get("waiting"):  # still none: wait on under a new key, so the next tick asks again
        return (fetched[0], *(gr.skip() for _ in range(3)), gr.skip())
    return fetched


def mode(services: Services, state: dict, annotator: str, _source: str, *config) -> tuple:
    """On opening and on a new prompt set: its answers per prompt, which view shows, and a first ranking."""
    k = services.ranking.answers_for(config[0] or "")
    ranking = k > 2
    shown = _fetch(services, k, annotator, config) if ranking else ({}, "", "", "", gr.Timer(active=False))
    return (k, gr.update(visible=not ranking), gr.update(visible=ranking), *shown)


def set_answers(services: Services, k, state: dict, annotator: str, source: str, *config) -> tuple:
    """An admin sets the prompt set's answers per prompt; the tab switches view at once."""
    services.ranking.set_answers(config[0] or "", int(k))
    return mode(services, state, annotator, source, *config)


def _shown(state: dict, annotator: str) -> ShownRanking:
    if not state.get("shown"):
        raise UserError("there are no answers on screen yet")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    return ShownRanking(**state["shown"])


def submit(services: Services, order: str, state: dict, annotator: str) -> str:
    """Store the ranking on screen (`order`: the positions on screen, best first, comma-separated)."""
    shown = _shown(state, annotator)
    try:
        positions = [int(part) for part in (order or "").split(",") if part.strip()]
    except ValueError:
        raise UserError("the ranking order is not a list of answer numbers") from None
    ack = services.ranking.rank(shown, positions, annotator=annotator)
    if ack.duplicate:
        return "Already stored this ranking; nothing new was stored."
    return f"Stored the ranking: {ack.pairs} pairs · {_count(services, annotator)}"


def advance(services: Services, state: dict, annotator: str, _source: str, *config) -> tuple:
    """The next answers after a ranking, once however many submits asked."""
    shown = state.get("shown")
    k = len(shown["gen_ids"]) if shown else services.ranking.answers_for(config[0] or "")
    fetched = services.ranking.moved_on.once(
        shown["key"] if shown else "", lambda: _fetch(services, k, annotator, config, "Stored")
    )
    return fetched if fetched is not None else tuple(gr.skip() for _ in range(5))


def skip(services: Services, state: dict, annotator: str, _source: str, *config) -> tuple:
    return _fetch(services, services.ranking.answers_for(config[0] or ""), annotator, config)


def undo(services: Services, state: dict, annotator: str) -> tuple:
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    shown = services.ranking.undo_last(annotator)
    return _present(services, shown, annotator, "Undid your last ranking: here are its answers again")


def wire(view: RankView, label_view, services: Services, demo: gr.Blocks, first) -> None:
    """`label_view`: the Label tab's (its pairwise part, annotator and sampling inputs)."""
    config = [label_view.source, *label_view.sampling.inputs()]
    me = label_view.annotator
    shown = [view.state, view.prompt, view.answers_html, view.status, view.timer]
    switched = [view.answers, label_view.pairwise, view.panel, *shown]
    quiet = dict(show_progress="hidden")
    demo.load(None, None, None, js=RANK_JS)
    on(first, lambda s, a, *c: mode(services, s, a, *c), [view.state, me, *config], switched, me, api_name=False)
    on(
        label_view.sampling.prompt_set.input,
        lambda s, a, *c: mode(services, s, a, *c),
        [view.state, me, *config],
        switched,
        me,
        api_name=False,
    )
    on(
        view.answers.input,
        lambda k, s, a, *c: set_answers(services, k, s, a, *c),
        [view.answers, view.state, me, *config],
        switched,
        me,
        api_name="label_answers_per_prompt",
    )
    stored = on(
        view.submit.click,
        lambda o, s, a: submit(services, o, s, a),
        [view.order, view.state, me],
        view.status,
        me,
        api_name="label_rank",
        js=SUBMIT_JS,
        concurrency_limit=None,
    )
    on(
        stored.success,
        lambda s, a, *c: advance(services, s, a, *c),
        [view.state, me, *config],
        shown,
        me,
        api_name="label_rank_next",
        concurrency_limit=None,
        **quiet,
    )
    on(
        view.skip.click,
        lambda s, a, *c: skip(services, s, a, *c),
        [view.state, me, *config],
        shown,
        me,
        api_name="label_rank_skip",
    )
    on(view.undo.click, lambda s, a: undo(services, s, a), [view.state, me], shown, me, api_name="label_rank_undo")
    on(
        view.timer.tick,
        lambda s, a, *c: poll(services, s, a, *c),
        [view.state, me, *config],
        shown,
        me,
        api_name=False,
        concurrency_limit=None,
        **quiet,
    )
