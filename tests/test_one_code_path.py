"""One code path per concept (issue 35): one judge-human agreement rule for the Validate report and the
judges' agreement table; the training callback stops on the metrics `non_finite` names."""

from types import SimpleNamespace

from transformers import TrainerControl

from alignstudio.services.consensus import judge_agreement
from alignstudio.training.metrics import WATCHED, MetricsCallback, non_finite

MSG = [{"role": "user", "content": "Which is better?"}]


def _pair(store, n):
    return store.add_pair(MSG, f"First answer {n}.", f"Second answer number {n}.", model_a="m", model_b="m")


def _disputed_store(store):
    """A store where the two old rules gave three figures: judge:x agrees with the humans on 4 of 6 pairs by the
    one rule; the old table (both_bad = tie) said 5 of 6, the old report (judge majority, labels without sides
    left out) 4 of 5."""
    p = [_pair(store, n) for n in range(7)]
    judge = {"annotator": "x", "source": "judge:x", "shown_left": "A"}
    store.add_preference(p[0], "A", annotator="ann1", shown_left="A")
    store.add_preference(p[0], "A", **judge)
    store.add_preference(p[1], "B", annotator="ann1", shown_left="B")
    store.add_preference(p[1], "B", **judge)
    store.add_preference(p[2], "both_bad", annotator="ann1", shown_left="A")  # the judge cannot say both_bad
    store.add_preference(p[2], "tie", **judge)
    store.add_preference(p[3], "A", annotator="ann1", shown_left="B")
    for verdict in ("A", "A", "B"):  # judged three times: majority A, latest B
        store.add_preference(p[3], verdict, **judge)
    store.add_preference(p[4], "B", annotator="ann1")  # no sides recorded (as a file import stores it)
    store.add_preference(p[4], "B", **judge)
    store.relabel(store.add_preference(p[5], "A", annotator="ann1", shown_left="A"), "B", annotator="ann1")
    store.add_preference(p[5], "B", **judge)
    store.add_preference(p[6], "A", annotator="ann1", shown_left="A")  # humans split: no consensus, not shared
    store.add_preference(p[6], "B", annotator="ann2", shown_left="B")
    store.add_preference(p[6], "A", **judge)
    return p


def test_the_validate_report_and_the_agreement_table_show_one_figure_for_one_store(store, workspace):
    from alignstudio.services.data.service import DataService
    from alignstudio.services.evaluation.service import EvaluationService
    from alignstudio.services.sampling.prompt_sets import PromptSets

    _disputed_store(store)
    report = DataService(store, workspace, PromptSets(workspace)).validate_labels("dpo")  # the Validate tab
    table = EvaluationService(store, workspace, None, PromptSets(workspace), "m").agreement()  # the Evaluate tab
    row = table.set_index("rater").loc["judge:x"]
    validated = report.stats["judge_agreement"]["judge:x"]
    tabled = {"shared": int(row["shared with humans"]), "agreement": row["agreement"], "kappa": row["kappa"]}
    assert validated == tabled == judge_agreement(store.preference_rows())["judge:x"].to_dict()
    assert validated["shared"] == 6 and validated["agreement"] == 0.6667
    assert validated["kappa"] == 0.4545  # (4/6 - 14/36) / (1 - 14/36)
    assert "judge:x: 67% agreement with humans, kappa 0.45 over 6 pairs" in report.to_text()


def test_the_metrics_callback_stops_on_exactly_what_non_finite_names(tmp_path):
    """A NaN or infinite watched metric stops the run without a checkpoint; an unwatched one (the learning
    rate) is written as null but stops nothing. The callback's list is `non_finite`'s."""
    callback = MetricsCallback(tmp_path / "metrics.jsonl", echo=False)
    state = SimpleNamespace(global_step=3, epoch=1.0, max_steps=10)
    calm = TrainerControl()
    callback.on_log(None, state, calm, logs={"loss": 0.5, "learning_rate": float("inf")})
    assert not calm.should_training_stop and callback.nan_keys == [] and callback.last["learning_rate"] is None
    logs = {"loss": 0.7, "grad_norm": float("nan"), "logps/chosen": float("-inf"), "learning_rate": 1e-4}
    control = TrainerControl(should_save=True)
    callback.on_log(None, state, control, logs=logs)
    assert callback.nan_keys == non_finite(callback.last) == ["grad_norm", "logps/chosen"]
    assert set(callback.nan_keys) <= set(WATCHED)
    assert control.should_training_stop and not control.should_save and callback.nan_at == 3


def _calls_and_definitions(name: str) -> tuple[set[str], set[str]]:
    """(modules calling `name`, modules defining it) in the package, by their path under alignstudio/."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "alignstudio"
    calls, defined = set(), set()
    for path in package.rglob("*.py"):
        rel = path.relative_to(package).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                if (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == name:
                    calls.add(rel)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                defined.add(rel)
    return calls, defined


def test_one_definition_each_of_agreement_implicit_reward_and_judge_construction():
    """Judges are built by `build_judge` only; the implicit reward is computed in judges/implicit.py only; the
    agreement rule and Cohen's kappa are defined once."""
    assert _calls_and_definitions("make_judge") == ({"services/judges/config.py"}, {"services/judges/__init__.py"})
    for name in ("implicit_rewards", "implicit_margins", "ImplicitReward", "sequence_logprobs"):
        calls, defined = _calls_and_definitions(name)
        assert calls <= {"services/judges/implicit.py"} and defined == {"services/judges/implicit.py"}, name
    for name in ("cohen_kappa", "human_consensus", "judge_agreement", "judge_verdicts"):
        assert _calls_and_definitions(name)[1] == {"services/consensus.py"}, name


def test_training_runs_are_one_typed_service_on_the_container(services):
    """The container's `runs` is a RunsService (typed, never None) and every operation on a run is one of its
    methods: no function in services/training takes the container, and nothing outside it reaches past the
    service to the run queue (`runs.manager`)."""
    import ast
    import typing
    from pathlib import Path

    from alignstudio.services.container import Services
    from alignstudio.services.training import RunsService

    assert isinstance(services.runs, RunsService) and typing.get_type_hints(Services)["runs"] is RunsService
    package = Path(__file__).resolve().parents[1] / "alignstudio"
    takes_container, reaches_queue = set(), set()
    for path in package.rglob("*.py"):
        rel = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text())
        if rel.startswith("services/training/"):
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and [a.arg for a in node.args.args[:1]] == ["services"]:
                    takes_container.add(f"{rel}:{node.name}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "manager" and getattr(node.value, "attr", "") == "runs":
                reaches_queue.add(rel)
    assert takes_container == set() and reaches_queue == set()
