"""A judge's report card (issue 36): each rate checked against a hand computation on a fixed set of verdicts; the
length-bias warning; refusals worded for the app (issue 38); the evaluation's running line."""

import pytest

from alignstudio.core.errors import UserError
from alignstudio.services.judges import Usage, Verdict
from alignstudio.services.judges.protocol import JudgeRun, PairItem, PairJudgment
from alignstudio.services.judges.report_card import LENGTH_BIAS_MARGIN, ReportCard, report_card

PROMPT = [{"role": "user", "content": "Q?"}]
TOKENS = Usage(input_tokens=10, output_tokens=5, calls=1)
# (key, response A, response B, judge's verdict shown as (A, B), judge's verdict shown as (B, A), combined)
#   words: p1 6 / 2, p2 1 / 4, p3 5 / 3, p4 3 / 3;  markdown elements: p1 0 / 1 (list item), p2 0 / 1 (bold),
#   p3 1 / 0 (header), p4 0 / 0
JUDGED = [
    ("p1", "a b c d e f", "- x", "A", "B", "A"),
    ("p2", "short", "**long** answer here now", "A", "A", "tie"),
    ("p3", "# Title\n\nbody text here", "plain words only", "A", "B", "A"),
    ("p4", "x y z", "p q r", "B", "A", "B"),
]
# the people: (pair, verdict, shown on the left)
HUMANS = [("p1", "A", "A"), ("p2", "B", "B"), ("p3", "B", "A"), ("p4", "tie", "A")]


def _run():
    items = [PairItem(key, PROMPT, a, b) for key, a, b, *_ in JUDGED]
    judgments = [
        PairJudgment(key, combined, Verdict(first, usage=TOKENS), Verdict(second, usage=TOKENS), first == second)
        for key, _, _, first, second, combined in JUDGED
    ]
    return JudgeRun({"name": "fixed"}, judgments, Usage(), None), items


def _card(humans=HUMANS, remote=True) -> ReportCard:
    run, items = _run()
    rows = [{"pair_id": p, "verdict": v, "shown_left": left, "annotator": "ann"} for p, v, left in humans]
    truth = {p: v for p, v, _ in humans}
    return report_card("judge:fixed", run, items, truth, rows, seconds=2.0, agreement=0.5, kappa=0.2, remote=remote)


def test_each_rate_matches_the_hand_computation():
    card = _card()
    # the first-shown answer won: p1 A-yes, B-no; p2 A-yes, A-yes; p3 A-yes, B-no; p4 B-no, A-yes: 5 of 8
    assert card.judge_first == 0.625
    # people, decisive labels with a known left side: p1 A left A (yes), p2 B left B (yes), p3 B left A (no)
    assert card.human_first == round(2 / 3, 4)
    # decisive combined verdicts with lengths apart: p1 (6 > 2, A won: yes), p3 (5 > 3, A won: yes); p2 is a tie
    assert card.judge_longer == 1.0
    # people: p1 A (longer, yes), p2 B (4 > 1, yes), p3 B (3 < 5, no); p4 is a tie
    assert card.human_longer == round(2 / 3, 4)
    # more markdown: p1 B has the list item but A won (no), p3 A has the header and won (yes); p4 has none
    assert card.judge_markdown == 0.5
    # people: p1 A (no), p2 B has the bold and won (yes), p3 B has none (no)
    assert card.human_markdown == round(1 / 3, 4)
    assert card.pairs == 4 and card.agreement == 0.5 and card.kappa == 0.2
    assert card.seconds_per_1000 == 500.0  # 2 s for 4 pairs
    assert card.tokens_per_1000 == 30_000.0  # 8 verdicts x 15 tokens over 4 pairs
    assert _card(remote=False).tokens_per_1000 is None  # a local judge has no paid tokens


def test_a_judge_preferring_length_beyond_the_people_is_warned_about():
    biased = _card()
    assert 1.0 - 2 / 3 > LENGTH_BIAS_MARGIN
    assert len(biased.warnings) == 1 and biased.warnings[0].startswith("LENGTH BIAS: judge:fixed")
    assert "100%" in biased.warnings[0] and "67%" in biased.warnings[0]
    agreeing = _card(humans=[("p1", "A", "A"), ("p2", "B", "B"), ("p3", "A", "A"), ("p4", "tie", "A")])
    assert agreeing.human_longer == 1.0 and agreeing.warnings == []


def test_the_warning_goes_into_every_report_through_the_trust_and_the_report_header():
    from alignstudio.services.evaluation import EvalReport, EvalResults, summary_markdown
    from alignstudio.services.judges.independence import SELF, Independence
    from alignstudio.services.judges.trust import Trust

    card = _card().to_dict()
    trust = Trust("judge:fixed", 4, 0.5, 0.2, 0.6, "trusted", "agrees", card=card)
    assert trust.warning.startswith("LENGTH BIAS") and trust.to_dict()["warnings"] == card["warnings"]
    selfish = Independence(SELF, "the judge is the run's own implicit reward", "run-1", forced=True)
    results = EvalResults(1, 1, 0, 1, 0, 0, 1.0, [None, None], 0.95, "", None, {}, None, None, None, 0, 0)
    report = EvalReport(
        "m",
        "b",
        {},
        {"name": "fixed"},
        trust.to_dict(),
        {},
        results,
        {"model_mean_words": 1, "baseline_mean_words": 1},
        {},
        {},
        {"calls": 0, "cached": 0, "input_tokens": 0, "output_tokens": 0},
        judge_independence=selfish.to_dict(),
    )
    assert [w.split(":")[0] for w in report.warnings] == ["SELF-JUDGED", "LENGTH BIAS"]
    header = summary_markdown(report).splitlines()
    assert header[0].startswith("> **SELF-JUDGED") and "(used by force)" in header[0]
    assert any("report card of judge:fixed on 4 pairs" in line for line in header)
    assert EvalReport.from_dict(report.to_dict()).warnings == report.warnings  # the saved file keeps them


def test_refusals_name_the_apps_fields_and_tabs_not_flags(monkeypatch):
    from alignstudio.services.judges import make_judge
    from alignstudio.services.judges.refusals import in_app_words
    from alignstudio.services.judges.trust import default_judge

    monkeypatch.delenv("ALIGNSTUDIO_JUDGE", raising=False)

    with pytest.raises(UserError) as missing:
        make_judge("openai", None)
    assert "--judge-model" in str(missing.value)  # the CLI keeps its flag
    assert in_app_words(missing.value).startswith('the openai judge needs a model name (the "Judge model" field)')
    with pytest.raises(UserError) as none:
        default_judge()
    app = in_app_words(none.value)
    assert "--" not in app and "alignstudio train" not in app
    assert 'Train tab (Method "Reward model"' in app and '"Judge backend"' in app


def test_a_policy_picked_as_the_reward_judge_points_to_the_train_tab(store, workspace, tmp_path):
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.services.judges.refusals import in_app_words
    from alignstudio.services.judges.reward import reward_model_folder

    store.register_model("dpo-x", tmp_path, kind="dpo")
    with pytest.raises(UserError) as wrong:
        reward_model_folder("dpo-x", ModelRegistry(workspace, store))
    assert "`alignstudio train --method reward`" in str(wrong.value)
    assert in_app_words(wrong.value) == (
        "dpo-x is a dpo model, not a reward model. To get one: train a reward model in the Train tab (Method "
        '"Reward model", on a snapshot exported in the Data tab).'
    )


@pytest.mark.parametrize(
    ("fraction", "elapsed", "expected"),
    [
        (0.01, 100.7, "*Running:* judging 1/50 (1% done, 101 s so far)"),  # too early to extrapolate
        (0.5, 10.0, "*Running:* judging 1/50 (50% done, 10 s so far, about 10 s left)"),
        (0.9, 90.0, "*Running:* judging 1/50 (90% done, 90 s so far, about 10 s left)"),
        (1.0, 5.0, "*Running:* judging 1/50 (100% done, 5 s so far)"),
    ],
)
def test_the_running_line_shows_progress_and_a_time_left_that_adds_up(fraction, elapsed, expected):
    from alignstudio.services.evaluation.render import progress_line

    assert progress_line(fraction, "judging 1/50", elapsed) == expected


def test_judge_measure_prints_the_card_keeps_it_for_the_evaluate_tab_and_warns_of_length_bias(
    tmp_path, capsys, monkeypatch
):
    from alignstudio.cli import main as cli_main
    from alignstudio.core.store import Store
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services

    monkeypatch.delenv("ALIGNSTUDIO_JUDGE", raising=False)
    ws = Workspace.open(tmp_path / "ws")
    store = Store(ws.db_path)
    long, short = "a long and winding answer that keeps going on and on", "a crisp answer"
    for i in range(24):  # people prefer the short answer, except one pair in three; it sits left half the time
        a, b = (long, short) if i % 2 == 0 else (short, long)
        wants_long = i % 3 == 0
        verdict = "A" if (a == long) == wants_long else "B"
        pair = store.add_pair([{"role": "user", "content": f"Question {i}?"}], a, b, model_a="m", model_b="m")
        store.add_preference(pair, verdict, annotator="ann", shown_left="A")
    store.close()
    assert cli_main(["--workspace", str(ws.root), "judge", "--measure", "--judge", "rules"]) == 0
    out = capsys.readouterr().out
    # the rule judge counts words: the longer answer always wins; people chose it in 8 of 24 pairs, and the
    # left-shown answer in 12 of 24
    assert "report card of judge:rules on 24 pairs (judge / people)" in out
    assert "the longer 100% / 33%" in out and "first-shown answer 50% / 50%" in out
    assert "LENGTH BIAS: judge:rules prefers the longer answer in 100% of decisive pairs, people in 33%" in out
    services = Services.build(ws, default_model="smollm2", resolve_default=False, autostart=False)
    try:
        cards = services.evaluation.report_cards()
    finally:
        services.close()
    assert list(cards["judge"]) == ["judge:rules"] and cards["judge_longer"][0] == 1.0
    assert cards["human_longer"][0] == round(8 / 24, 4)
