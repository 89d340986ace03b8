"""A model judged by itself (issue 38, major 1) and a refusal nobody sees (major 4): a DPO run trained on a
snapshot of the store's human labels, evaluated with its own implicit reward, is refused (or, forced, reported
as SELF-JUDGED at the top); the implicit judge's agreement with people leaves out the run's training prompts; a
reward model trained on the same snapshot is flagged as not independent; in the browser, both refusals stand in
the Evaluate tab's summary, worded with the app's fields and tabs."""

import pytest
from servers import browser_page, free_port

from alignstudio.cli import main as cli_main
from alignstudio.core.errors import UserError

TOPICS = [f"topic {i}" for i in range(30)]
BULLETS = "- {t} is interesting\n- here are three facts about {t}\n- I hope this helps"
CURT = "No. I will not answer that."
HELDOUT_ROWS = 6  # of 30 rows at the default held-out fraction (training.split)


@pytest.fixture(scope="module")
def trained(ws, ws_store, tiny_model_dir):
    """30 human-labeled pairs (the bulleted answer wins, on either side), their DPO snapshot, and a DPO run
    trained on that snapshot folder, registered as dpo-self."""
    from alignstudio.services.data.snapshots import export_snapshot

    for i, topic in enumerate(TOPICS):
        good, bad = BULLETS.format(t=topic), CURT
        a, b, verdict = (good, bad, "A") if i % 2 == 0 else (bad, good, "B")
        messages = [{"role": "user", "content": f"Tell me about {topic}."}]
        pair = ws_store.add_pair(messages, a, b, model_a="m", model_b="m")
        ws_store.add_preference(pair, verdict, annotator="ann", shown_left="A" if i % 3 else "B")
    snapshot = export_snapshot(ws_store, ws, "dpo")
    out = ws.root / "runs-test" / "dpo-self"
    common = ["--data", str(snapshot.path), "--model", str(tiny_model_dir), "--max-steps", "2"]
    common += ["--max-length", "64", "--batch-size", "2", "--compare-prompts", "0"]
    argv = ["--workspace", str(ws.root), "train", "--method", "dpo", *common, "--out", str(out)]
    assert cli_main([*argv, "--register-as", "dpo-self"]) == 0
    return snapshot, out


@pytest.fixture(scope="module")
def services(ws, tiny_model_dir, trained):
    from alignstudio.services.container import Services

    built = Services.build(ws, default_model=str(tiny_model_dir))
    yield built
    built.close()


def _implicit(services, run="dpo-self"):
    from alignstudio.services.judges.config import JudgeConfig

    return services.evaluation.judge(JudgeConfig(kind="implicit", model=run))


def test_the_implicit_judges_agreement_leaves_out_the_runs_training_prompts(services, trained):
    from alignstudio.services.judges.trust import measure_judge

    judge = _implicit(services)
    assert len(judge.trained_prompts) == len(TOPICS) - HELDOUT_ROWS  # read from the snapshot folder
    trust = measure_judge(judge, services.store)
    assert trust.excluded_trained == len(TOPICS) - HELDOUT_ROWS
    assert trust.count == HELDOUT_ROWS and trust.status == "unmeasured"  # 6 labels it never trained on: too few
    assert "24 pairs on its training prompts left out" in trust.note


def test_a_model_judged_by_its_own_implicit_reward_is_refused_and_forced_says_so(services):
    from alignstudio.services.evaluation import EvalSettings, evaluate_and_save
    from alignstudio.services.judges.independence import SELF, check

    judge = _implicit(services)
    assert check(judge, services.generators.registry, "dpo-self").status == SELF
    prompts = services.prompt_sets.load("eval")
    settings = EvalSettings(limit=2, max_new_tokens=4, perplexity=False)
    args = (services.workspace, services.store, services.generators, prompts, "dpo-self", services.default_model)
    with pytest.raises(UserError, match="a model judged by itself"):
        evaluate_and_save(*args, judge, settings=settings)
    report, path = evaluate_and_save(*args, judge, settings=settings, force_judge=True)
    assert report.warnings[0].startswith("SELF-JUDGED: the judge implicit-")
    assert report.judge_independence["forced"] and "SELF-JUDGED" in path.read_text()


def test_the_train_tabs_run_vs_base_evaluation_refuses_the_runs_own_implicit_reward(services):
    """Against its base, a run's own implicit reward is the model judging itself: the Train tab no longer offers
    it, and the service refuses it by name before anything is generated."""
    from alignstudio.ui.train_runs import EVAL_JUDGES

    assert "implicit" not in [kind for _, kind in EVAL_JUDGES]
    with pytest.raises(UserError, match="judging itself"):
        services.runs.evaluate_against_base("dpo-self", "implicit")


def test_a_reward_model_trained_on_the_runs_labels_is_flagged_as_not_independent(ws, services, trained, tiny_model_dir):
    from alignstudio.services.judges.config import JudgeConfig
    from alignstudio.services.judges.independence import SHARED, check

    snapshot, _ = trained
    argv = ["--workspace", str(ws.root), "train", "--method", "reward", "--data", str(snapshot.path)]
    argv += ["--model", str(tiny_model_dir), "--max-steps", "2", "--max-length", "64", "--batch-size", "2"]
    assert cli_main([*argv, "--out", str(ws.root / "runs-test" / "rm"), "--register-as", "rm-same-data"]) == 0
    judge = services.evaluation.judge(JudgeConfig(kind="reward", model="rm-same-data"))
    found = check(judge, services.generators.registry, "dpo-self")
    assert found.status == SHARED and found.shared_prompts == len(TOPICS) - HELDOUT_ROWS
    assert found.warning.startswith("NOT INDEPENDENT: the judge reward-rm-same-data trained on 24 of the prompts")
    assert check(judge, services.generators.registry, services.default_model).status == "unknown"


def _pick(page, elem_id: str, option: str) -> None:
    page.click(f"#{elem_id} input")
    page.locator(f"#{elem_id} ul li", has_text=option).first.click()


def _summary(page) -> str:
    return page.evaluate("document.querySelector('#eval-summary')?.innerText || ''")


def _evaluate_tab(services):
    import gradio as gr

    from alignstudio.ui import evaluate as tab

    with gr.Blocks() as demo:
        with gr.Tab("Evaluate") as eval_tab:
            view = tab.build(services)
        tab.wire(view, services, eval_tab)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.mark.browser
def test_the_evaluate_tab_shows_the_self_judging_refusal_in_its_summary(services):
    demo, url = _evaluate_tab(services)
    try:
        with browser_page() as page:
            page.goto(url)
            page.wait_for_selector("#eval-run")
            _pick(page, "eval-judge-kind", "implicit reward")
            page.fill("#eval-judge-model input, #eval-judge-model textarea", "dpo-self")
            page.locator("#eval-model input").fill("dpo-self")
            page.locator("#eval-model input").press("Enter")
            page.fill("#eval-limit input", "2")
            page.click("#eval-run")
            page.wait_for_function(
                "(document.querySelector('#eval-summary')?.innerText || '').includes('Not run')", timeout=120_000
            )
            summary = _summary(page)
            assert "a model judged by itself" in summary and '"Judge backend"' in summary
            assert "--" not in summary
            headers = page.eval_on_selector_all("#eval-samples th", "cells => cells.map(c => c.innerText.trim())")
            assert "prompt" in headers and "1" not in headers  # an empty table keeps its real headers
    finally:
        demo.close()


@pytest.mark.browser
def test_no_usable_judge_is_said_in_the_summary_with_the_way_to_get_one_in_the_app(
    tmp_path, tiny_model_dir, monkeypatch
):
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services
    from alignstudio.services.judges import make_judge
    from alignstudio.services.judges.protocol import JudgeCache
    from alignstudio.services.judges.trust import measure_judge

    monkeypatch.delenv("ALIGNSTUDIO_JUDGE", raising=False)
    fresh = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir))
    for i, topic in enumerate(TOPICS[:20]):  # people's labels, and the rule judge measured on them: its card
        pair = fresh.store.add_pair(
            [{"role": "user", "content": topic}], BULLETS.format(t=topic), CURT, model_a="m", model_b="m"
        )
        fresh.store.add_preference(pair, "A", annotator="ann", shown_left="A" if i % 2 else "B")
    measure_judge(make_judge("rules"), fresh.store, cache=JudgeCache.for_workspace(fresh.workspace))
    demo, url = _evaluate_tab(fresh)
    try:
        with browser_page() as page:
            page.goto(url)
            page.wait_for_selector("#eval-run")
            page.click("#eval-run")  # the judge: "best available", and there is none
            page.wait_for_function(
                "(document.querySelector('#eval-summary')?.innerText || '').includes('Not run')", timeout=60_000
            )
            page.wait_for_timeout(6_000)  # a toast would be gone by now; the summary stays
            summary = _summary(page)
            assert "No judge with measured signal is available" in summary
            assert 'Train tab (Method "Reward model"' in summary and '"Judge model" field' in summary
            assert "--judge" not in summary and "alignstudio train" not in summary
            # where the judge is chosen: the measured judges' report cards (the tab's timer fills them)
            page.wait_for_function(
                "(document.querySelector('#eval-judge-cards')?.innerText || '').includes('judge:rules')",
                timeout=60_000,
            )
            cards = page.evaluate("document.querySelector('#eval-judge-cards').innerText")
            assert "P(longer) judge" in cards and "P(longer) people" in cards
    finally:
        demo.close()
        fresh.close()


def test_the_cli_evals_door_refuses_a_model_judged_by_itself_and_saves_where_asked(services, tmp_path):
    """`EvaluationService.evaluate_prompts` (what `alignstudio eval` is to call) vets independence as the tab
    does, tells the caller the judge's measurement before generating, and saves the report to `out`."""
    from alignstudio.services.evaluation import EvalSettings
    from alignstudio.services.judges.config import JudgeConfig

    prompts = services.prompt_sets.load("eval")
    settings = EvalSettings(limit=2, max_new_tokens=4, perplexity=False)
    evaluate = services.evaluation.evaluate_prompts
    heard = []
    own = JudgeConfig(kind="implicit", model="dpo-self")
    with pytest.raises(UserError, match="a model judged by itself"):
        evaluate(
            "dpo-self", services.default_model, prompts, settings, own, out=tmp_path / "r.json", on_trust=heard.append
        )
    assert heard == [] and not (tmp_path / "r.json").exists()  # refused before the judge was even measured
    forced = JudgeConfig(kind="implicit", model="dpo-self", force=True)
    report, path = evaluate(
        "dpo-self", services.default_model, prompts, settings, forced, out=tmp_path / "r.json", on_trust=heard.append
    )
    assert path == tmp_path / "r.json" and "SELF-JUDGED" in path.read_text() and len(heard) == 1
    assert report.warnings[0].startswith("SELF-JUDGED")
