"""Per-annotator quality: counts, speed, agreement with the others' consensus, Cohen's and Fleiss' kappa (checked
against scikit-learn and statsmodels on the same labels), left-side and longer-answer leanings; an annotator sees
their own count and agreement only; `alignstudio agreement` prints the table."""

import json

import numpy as np
import pytest
from servers import cli
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from alignstudio.core import access
from alignstudio.services.data.annotators import BREAK_SECONDS, TIMING_NOTE, annotator_quality

# verdicts of three annotators on the same 10 pairs (xena and bob mostly agree, yuri is noisier)
VERDICTS = {
    "xena": ["A", "A", "B", "B", "A", "tie", "A", "B", "both_bad", "A"],
    "bob": ["A", "A", "B", "A", "A", "tie", "A", "B", "B", "A"],
    "yuri": ["B", "A", "B", "A", "tie", "A", "A", "A", "both_bad", "B"],
}
SHORT, LONG = "Yes.", "Yes, and here is a much longer answer with many words."


def _records() -> list[dict]:
    records = []
    for who, verdicts in VERDICTS.items():
        for i, verdict in enumerate(verdicts):
            records.append(
                {
                    "pair_id": f"p{i}",
                    "annotator": who,
                    "source": "human",
                    "verdict": verdict,
                    "shown_left": "A" if i % 2 == 0 else "B",
                    "text_a": LONG if i < 5 else SHORT,
                    "text_b": SHORT if i < 5 else LONG,
                    "created": 1000.0 + 30 * i + (BREAK_SECONDS + 1 if i >= 5 else 0),  # one break after pair 4
                }
            )
    records.append({**records[0], "source": "judge:rules", "annotator": "judge"})  # judges are not annotators
    return records


def test_kappas_and_agreement_match_sklearn_and_statsmodels_on_the_same_labels():
    report = annotator_quality(_records())
    assert [q.annotator for q in report.annotators] == ["bob", "xena", "yuri"]
    for pair in report.pairs:
        expected = cohen_kappa_score(VERDICTS[pair.a], VERDICTS[pair.b])
        assert pair.shared == 10 and pair.kappa == pytest.approx(expected, abs=1e-4), (pair.a, pair.b)
        same = np.mean([x == y for x, y in zip(VERDICTS[pair.a], VERDICTS[pair.b])])
        assert pair.agreement == pytest.approx(same)
    table, _ = aggregate_raters(np.array([VERDICTS[w] for w in VERDICTS]).T)
    assert report.fleiss_kappa == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-4)
    assert (report.fleiss_items, report.fleiss_raters) == (10, 3)

    # agreement with the consensus of the others, by hand: xena against bob and yuri where those two agree
    ann = next(q for q in report.annotators if q.annotator == "xena")
    others = {i: VERDICTS["bob"][i] for i in range(10) if VERDICTS["bob"][i] == VERDICTS["yuri"][i]}
    assert ann.agreement_n == len(others) == 4
    assert ann.agreement == pytest.approx(np.mean([VERDICTS["xena"][i] == v for i, v in others.items()]))
    mine, theirs = [VERDICTS["xena"][i] for i in others], list(others.values())
    assert ann.agreement_kappa == pytest.approx(cohen_kappa_score(mine, theirs), abs=1e-4)
    assert report.campaign.agreement_n == sum(q.agreement_n for q in report.annotators)
    assert report.campaign.labels == 30  # human labels only


def test_left_and_longer_leanings_and_timing_with_their_counts():
    report = annotator_quality(_records())
    ann = next(q for q in report.annotators if q.annotator == "xena")
    decisive = [(i, v) for i, v in enumerate(VERDICTS["xena"]) if v in ("A", "B")]
    left = sum(v == ("A" if i % 2 == 0 else "B") for i, v in decisive)
    longer = sum(v == ("A" if i < 5 else "B") for i, v in decisive)
    assert (ann.left_n, ann.left_rate) == (len(decisive), pytest.approx(left / len(decisive)))
    assert (ann.longer_n, ann.longer_rate) == (len(decisive), pytest.approx(longer / len(decisive)))
    # 9 gaps between 10 labels, the break left out: 8 gaps of 30 s
    assert (ann.seconds_per_label, ann.seconds_n) == (30.0, 8)
    all_decisive = [v for vs in VERDICTS.values() for v in vs if v in ("A", "B")]
    assert report.campaign.left_n == len(all_decisive)
    text = report.to_text()
    assert "left chosen" in text and "Fleiss" in text and "63-77%" in text and TIMING_NOTE in text


def _label_all(store):
    for i in range(10):
        pair = store.add_pair(
            [{"role": "user", "content": f"Question {i}?"}], LONG, SHORT, model_a="m", model_b="m", prompt_set="s"
        )
        for who, verdicts in VERDICTS.items():
            store.add_preference(pair, verdicts[i], annotator=who, shown_left="A")


def test_an_annotator_sees_their_own_count_and_agreement_and_no_one_elses(services, store):
    _label_all(store)
    full = services.data.annotator_quality()  # no accounts: the local user is an admin
    assert len(full.annotators) == 3 and full.pairs and full.fleiss_kappa is not None
    access.configure(role_of=lambda name: access.ANNOTATOR)
    try:
        with access.acting_as(access.caller_for("bob")):
            mine = services.data.annotator_quality()
    finally:
        access.reset()
    [bob] = mine.annotators
    expected = next(q for q in full.annotators if q.annotator == "bob")
    assert (bob.labels, bob.agreement, bob.agreement_n) == (10, expected.agreement, expected.agreement_n)
    shown = json.dumps(mine.to_dict()) + json.dumps(mine.rows()) + mine.to_text() + json.dumps(mine.plot_rows())
    assert "xena" not in shown and "yuri" not in shown and "(campaign)" not in shown
    assert mine.pairs == [] and mine.fleiss_kappa is None and bob.left_rate is None and bob.seconds_per_label is None
    assert set(mine.rows()[0]) == {"annotator", "labels", "agreement with the others' consensus"}


def test_agreement_command_prints_the_table(workspace, store):
    _label_all(store)
    result = cli("agreement", workspace=workspace.root)
    assert result.returncode == 0, result.stderr
    for needle in ("xena", "bob", "yuri", "(campaign)", "Fleiss", "Cohen's kappa", "63-77%"):
        assert needle in result.stdout, needle
    as_json = cli("agreement", "--json", workspace=workspace.root)
    assert json.loads(as_json.stdout)["fleiss_raters"] == 3
