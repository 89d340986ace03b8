"""A three-turn conversation through the whole loop: imported as a prompt set, labeled in Chromium (the earlier
turns shown above the answers, as text), exported as a snapshot in TRL's conversational form, and trained on
for 2 DPO steps on the tiny model, whose tokenized prompts are the chat template's rendering of every turn."""

import json

import pytest
from datasets import load_from_disk
from servers import browser_page, cli, running_app

from alignstudio.core.models import load_tokenizer
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.services.data.checks import validate_path
from alignstudio.training.data import load_training_data
from alignstudio.training.run_folder import RunFolder
from alignstudio.training.spec import RunSpec
from alignstudio.training.trainer_setup import load_model, make_config, make_trainer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHATS = [
    [
        {"role": "user", "content": "My cat is called <b>Tom</b>."},
        {"role": "assistant", "content": "*Tom* is a fine name for a cat."},
        {"role": "user", "content": "What is my cat called?"},
    ],
    [
        {"role": "user", "content": "I live in Paris."},
        {"role": "assistant", "content": "Paris is lovely in spring."},
        {"role": "user", "content": "Which city do I live in?"},
    ],
]


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id}')?.innerText || ''")


def _wait_for(page, elem_id: str, needle: str) -> None:
    page.wait_for_function(
        f"(document.querySelector('#{elem_id}')?.innerText || '').includes({needle!r})", timeout=300_000
    )


def _label_two_conversations(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#label-prompt-set input", timeout=120_000)
    page.fill("#annotator textarea, #annotator input", "alice")
    page.click("text=Sampling settings")  # short answers: sampled sooner
    page.fill("#label-max-new-tokens input", "16")
    page.keyboard.press("Tab")
    page.click("#label-prompt-set input")
    page.click("#label-prompt-set ul li:has-text('chat')")
    for count in (1, 2):
        _wait_for(page, "label-prompt", "a conversation: 2 earlier turns")
        shown = _text(page, "label-prompt")
        chat = next(c for c in CHATS if c[-1]["content"] in shown)
        # every turn, in order, with its role; the earlier turns' text as written (no tag, no emphasis from it)
        places = [shown.index(f"{role}: {m['content']}") for role, m in zip(("User", "Assistant"), chat)]
        assert places == sorted(places) and shown.index("User (answered below): " + chat[-1]["content"]) > places[-1]
        assert page.query_selector("#label-prompt b, #label-prompt em, #label-prompt a") is None
        page.wait_for_function("!document.querySelector('#label-left-better').disabled", timeout=120_000)
        page.click("#label-left-better")
        _wait_for(page, "label-status", f"{count} labels by alice")


def _trained(workspace: Workspace, model, snapshot: str, tmp_path):
    """2 DPO steps on the snapshot, as the training worker sets them up: the trainer after its run."""
    spec = RunSpec(
        method="dpo",
        model=str(model),
        data=snapshot,
        batch_size=2,
        max_steps=2,
        max_length=256,
        learning_rate=1e-3,
        save_steps=100,
        logging_steps=1,
    )
    run = RunFolder.create(tmp_path / "run", spec)
    loaded = load_model(spec, ModelRegistry(workspace, Store(workspace.db_path)))
    trainer = make_trainer(spec, make_config(spec, run), loaded, load_training_data(spec.data, "dpo").dataset, [])
    trainer.train()
    return trainer


def test_a_three_turn_conversation_from_import_through_labeling_to_a_dpo_run(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    prompts = tmp_path / "chat.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": chat}) + "\n" for chat in CHATS))
    imported = cli("import", str(prompts), "--prompts", "--name", "chat", workspace=workspace)
    assert imported.returncode == 0 and "imported 2 prompts as prompt set 'chat'" in imported.stdout

    with running_app(workspace, tiny_model_dir, "--prefetch", "1") as (_, url), browser_page() as page:
        _label_two_conversations(page, url)

    exported = cli("export", "--kind", "dpo", workspace=workspace)
    assert exported.returncode == 0, exported.stderr
    [snapshot] = Store(workspace / "store.sqlite").snapshots()
    rows = load_from_disk(snapshot["path"]).to_list()
    assert len(rows) == 2
    for row in rows:  # TRL's conversational form: the whole conversation is the prompt
        assert row["prompt"] in CHATS
        assert [m["role"] for m in row["chosen"]] == [m["role"] for m in row["rejected"]] == ["assistant"]

    tokenizer = load_tokenizer(str(tiny_model_dir))
    # validation counts the prompt's tokens the way training makes them: the chat template over every turn
    report = validate_path(snapshot["path"], tokenizer=tokenizer, max_length=256)
    assert report.stats["form"] == "conversational" and report.stats["token_length_method"] == "chat template"
    assert report.stats["prompt_tokens"] == [
        len(
            tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        for row in rows
    ]

    trainer = _trained(Workspace.open(workspace), tiny_model_dir, snapshot["path"], tmp_path)
    assert trainer.state.global_step == 2
    rendered = {
        tuple(
            tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)[
                "input_ids"
            ]
        ): chat
        for chat in CHATS
    }
    tokenized = trainer.train_dataset
    assert len(tokenized) == 2
    for row in tokenized:
        prompt_ids = tuple(row["prompt_ids"])
        assert prompt_ids in rendered  # exactly the chat template over the whole conversation
        text = tokenizer.decode(prompt_ids)
        places = [text.index(m["content"]) for m in rendered[prompt_ids]]
        assert places == sorted(places)
