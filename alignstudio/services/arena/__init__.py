"""The chat arena: two models answer the same conversation side by side; the user's vote becomes a pair.

Owns the arena's conversation state (one shared history, so every vote is a clean preference pair: the
history plus the user's turn as the prompt, the two replies as the responses), anonymous side assignment,
token streaming, and storing votes with `source = arena`. Earlier turns continue from the reply the user
preferred (the left one when there was no decisive vote), as both models must see the same prompt.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from transformers import TextIteratorStreamer

from ...core.errors import UserError
from ...core.settings import check_bounds, setting
from ...core.store import Store
from ...core.store_file import new_id
from ..evaluation.style import style_features
from ..labeling import CHOICES
from ..labeling.exactly_once import Ack, acknowledge, already_stored
from ..limits import NAME_CHARS, check_length
from ..sampling.sampler import Generator
from ..sampling.settings import SamplingSettings
from .ratings import Battle, Leaderboard, RatingSettings, leaderboard

MAX_TURN_CHARS = 8000
_SAMPLING = SamplingSettings()


@dataclass(frozen=True)
class ArenaSettings:
    """How both models answer in the arena: the sampling defaults, and longer answers than a labeling pair."""

    temperature: float = setting(
        _SAMPLING.temperature_a,
        "sampling temperature of both answers",
        label="Temperature",
        minimum=0.05,
        maximum=2.0,
        step=0.05,
    )
    top_p: float = setting(_SAMPLING.top_p, "nucleus sampling of both answers", label="top_p")
    max_new_tokens: int = setting(256, "tokens per answer at most", label="Max new tokens", minimum=1, maximum=2048)

    def __post_init__(self):
        check_bounds(self, "temperature", "max_new_tokens")


@dataclass
class ArenaState:
    """Per-browser arena state (kept in gr.State as a dict)."""

    model_left: str
    model_right: str
    anonymous: bool
    history: list[dict] = field(default_factory=list)  # shared conversation before the current turn
    user_turn: str = ""
    reply_left: str = ""
    reply_right: str = ""
    voted: bool = True  # no open turn to vote on
    continue_with: str = "left"  # whose reply the next turn builds on
    complete: bool = True  # both replies to the open turn have finished
    turn_key: str = ""  # fresh per turn: id of its pair and of the vote on it

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ArenaState":
        return cls(**data)

    def labels(self) -> tuple[str, str]:
        """Column titles: hidden names until the vote in anonymous mode."""
        if self.anonymous and not self.voted:
            return "Model A", "Model B"
        return f"A: {self.model_left}", f"B: {self.model_right}"

    def transcript(self, side: str) -> list[dict]:
        """What one column shows: the shared history plus this side's reply to the open turn."""
        messages = list(self.history)
        if self.user_turn:
            messages.append({"role": "user", "content": self.user_turn})
            reply = self.reply_left if side == "left" else self.reply_right
            if reply:
                messages.append({"role": "assistant", "content": reply})
        return messages


def new_battle(model_x: str, model_y: str, anonymous: bool, rng: random.Random | None = None) -> ArenaState:
    """Start a conversation; in anonymous mode the sides are shuffled so position says nothing."""
    if not model_x or not model_y:
        raise UserError("pick two models")
    if anonymous and (rng or random).random() < 0.5:
        model_x, model_y = model_y, model_x
    return ArenaState(model_x, model_y, anonymous)


def _stream_one(
    generator: Generator,
    messages: list[dict],
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    out: list[str],
    done: threading.Event,
    failures: list[Exception],
) -> None:
    """Run one generation, appending decoded text to out[0] as tokens arrive."""
    if generator.tokenizer is None:  # a remote generator (sampling.remote): its answer arrives whole
        try:
            (out[0],) = generator.complete(
                [messages], [temperature], top_p=top_p, max_new_tokens=max_new_tokens, seed=None
            )
        except Exception as exc:  # noqa: BLE001 - raised again by stream_turn, in the caller's thread
            failures.append(exc)
        finally:
            done.set()
        return
    tokenizer = generator.tokenizer
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    batch = tokenizer([text], return_tensors="pt", add_special_tokens=False)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)

    def run():
        with generator.decoding():  # one core while a worker trains (core.cpu_share), as every decode
            generator.model.generate(
                **batch,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=0,
                max_new_tokens=max_new_tokens,
                streamer=streamer,
                pad_token_id=tokenizer.pad_token_id,
            )

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        for chunk in streamer:
            out[0] += chunk
    finally:
        worker.join()
        out[0] = out[0].strip()
        done.set()


def stream_turn(
    state: ArenaState,
    user_text: str,
    left: Generator,
    right: Generator,
    settings: ArenaSettings = ArenaSettings(),
    *,
    regenerate: bool = False,
) -> Iterator[ArenaState]:
    """Add a user turn (or, with `regenerate`, answer the open one again) and stream both replies at once,
    yielding the state as text arrives."""
    if regenerate:
        if not state.user_turn or state.voted:
            raise UserError("nothing to regenerate: send a message first")
        user_text = state.user_turn
    user_text = (user_text or "").strip()
    if not user_text:
        raise UserError("type a message first")
    if len(user_text) > MAX_TURN_CHARS:
        raise UserError(f"the message is {len(user_text):,} characters (limit {MAX_TURN_CHARS:,})")
    if state.user_turn and not regenerate:  # the previous turn continues from the preferred (or left) reply
        kept = state.reply_right if state.continue_with == "right" else state.reply_left
        state.history += [{"role": "user", "content": state.user_turn}, {"role": "assistant", "content": kept}]
    state.user_turn, state.reply_left, state.reply_right = user_text, "", ""
    state.voted, state.continue_with, state.complete, state.turn_key = False, "left", False, new_id()
    messages = state.history + [{"role": "user", "content": user_text}]
    outs, events, failures = ([""], [""]), (threading.Event(), threading.Event()), []
    threads = [
        threading.Thread(
            target=_stream_one,
            args=(gen, messages, settings.temperature, settings.top_p, settings.max_new_tokens, out, done, failures),
            daemon=True,
        )
        for gen, out, done in ((left, outs[0], events[0]), (right, outs[1], events[1]))
    ]
    for thread in threads:
        thread.start()
    while not all(e.is_set() for e in events):
        events[0].wait(0.1)
        state.reply_left, state.reply_right = outs[0][0], outs[1][0]
        yield state
    for thread in threads:
        thread.join()
    if failures:  # a remote server's one clear error; the turn stays open to regenerate
        raise failures[0]
    state.reply_left, state.reply_right = outs[0][0], outs[1][0]
    state.complete = True
    yield state


def identical(state: ArenaState) -> bool:
    return state.complete and bool(state.user_turn) and state.reply_left.strip() == state.reply_right.strip()


def record_vote(store: Store, state: ArenaState, choice: str, *, annotator: str) -> Ack:
    """Store the open turn as a pair (A = left model) and the vote on it; reveal the names. The turn's key
    is the id of both, so a second click on the same turn stores nothing new."""
    if choice not in CHOICES:
        raise UserError(f"vote must be one of {', '.join(CHOICES)}")
    check_length(annotator.strip(), "the annotator name", NAME_CHARS)
    key = state.turn_key or new_id()
    earlier = already_stored(store, key)
    if earlier is not None:
        state.voted = True
        return earlier
    if state.voted or not state.user_turn:
        raise UserError("nothing to vote on: send a message first")
    if not state.complete or not state.reply_left or not state.reply_right:
        raise UserError("wait until both answers are complete")
    messages = state.history + [{"role": "user", "content": state.user_turn}]
    pair_id = store.add_pair(
        messages,
        state.reply_left,
        state.reply_right,
        model_a=state.model_left,
        model_b=state.model_right,
        prompt_set="arena",
        origin="arena",
        pair_id=key,
    )
    verdict = {"left": "A", "right": "B"}.get(choice, choice)
    event_id = store.add_preference(
        pair_id, verdict, annotator=annotator.strip(), source="arena", shown_left="A", event_id=key
    )
    state.continue_with = "right" if choice == "right" else "left"
    state.voted = True
    return acknowledge(store, event_id, verdict)


def arena_battles(store: Store) -> list[Battle]:
    """A battle (models, score of A: 1 win, 0.5 tie, 0 loss, and both answers' style) for every decisive or
    tied arena vote."""
    battles = []
    for row in store.preference_rows():
        if row["source"] != "arena" or row["verdict"] == "both_bad":
            continue
        score = {"A": 1.0, "B": 0.0, "tie": 0.5}[row["verdict"]]
        style_a, style_b = style_features(row["text_a"]), style_features(row["text_b"])
        battles.append(Battle(row["model_a"], row["model_b"], score, style_a, style_b))
    return battles


@dataclass
class ArenaService:
    """The Arena tab's door: votes into the store (once per turn) and the leaderboard from them."""

    store: Store
    generators: Any = None  # the loaded-model pool (sampling.generators.GeneratorPool)
    live: Any = None  # live.LiveService: resolves the model "live" to the newest live version
    _board: tuple | None = field(default=None, init=False, repr=False)  # (votes and settings, Leaderboard)
    _board_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def turn(self, state: ArenaState, user_text: str, settings: ArenaSettings, *, regenerate: bool = False):
        """Both models answer the turn (each model name resolved, and checked, as the caller), streamed. "live" is
        the newest live version when the conversation starts, and stays that version (its vote records it)."""
        if self.live is not None:
            state.model_left, state.model_right = map(self.live.resolve_model, (state.model_left, state.model_right))
        left, right = self.generators.get(state.model_left), self.generators.get(state.model_right)
        return stream_turn(state, user_text, left, right, settings, regenerate=regenerate)

    def vote(self, state: ArenaState, choice: str, *, annotator: str) -> Ack:
        return record_vote(self.store, state, choice, annotator=annotator)

    def leaderboard(self, settings: RatingSettings = RatingSettings()) -> Leaderboard:
        """Raw and style-controlled Bradley-Terry ratings of every model version from the arena votes. Everyone
        may see it, as on Chatbot Arena (it holds model names and counts, no labels). The last board is kept:
        the same votes and settings give it again without refitting hundreds of bootstrap rounds."""
        battles = arena_battles(self.store)
        key = (tuple(battles), settings)
        with self._board_lock:
            if self._board is not None and self._board[0] == key:
                return self._board[1]
        board = leaderboard(battles, settings)
        with self._board_lock:
            self._board = (key, board)
        return board
