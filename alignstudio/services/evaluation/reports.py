"""An evaluation report: its dataclasses (`EvalReport`, `EvalResults`), its JSON file (saved atomically, read
back, listed newest first under the workspace's evals/) and its line in the evaluated run's model card."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ...core.errors import UserError
from ...core.workspace import Workspace

REPORT_KIND = "alignstudio-eval"
REPORT_VERSION = 1


@dataclass
class EvalResults:
    """The judged outcome: counts, the win rate raw, length-controlled and style-controlled with their intervals
    (`stats`, `style`), and the judge's biases. Fields after `backend_failures` have defaults: older reports
    lack them and still load (an interval of [None, None], no style model)."""

    n: int
    judged: int
    failed: int
    wins: int
    ties: int
    losses: int
    win_rate: float | None
    win_rate_ci: list
    confidence: float
    ci_method: str
    lc_win_rate: float | None
    length_model: dict
    position_inconsistency_rate: float | None
    flip_rate: float | None
    first_position_rate: float | None
    parse_failures: int
    backend_failures: int
    injection_guarded: int = 0
    identical_answers: int = 0
    lc_win_rate_ci: list = field(default_factory=lambda: [None, None])
    sc_win_rate: float | None = None
    sc_win_rate_ci: list = field(default_factory=lambda: [None, None])
    style_model: dict = field(default_factory=dict)  # style.style_controlled_win_rate: coefficients, scales, n

    @property
    def control_warnings(self) -> list[str]:
        """A controlled win rate far from the raw one (AlpacaEval's rule, `stats.extreme_change`): the raw figure
        is driven by length or style, or the fit is unreliable on these prompts; either way, not one to quote."""
        from .stats import extreme_change

        found = []
        for name, controlled in (("length-controlled", self.lc_win_rate), ("style-controlled", self.sc_win_rate)):
            if extreme_change(self.win_rate, controlled):
                found.append(
                    f"{name.upper()} WIN RATE {100 * controlled:.1f}% against raw {100 * self.win_rate:.1f}%: "
                    f"the raw win rate comes from the answers' {name.split('-')[0]}, not their content, or the fit "
                    f"is unreliable on {self.judged} prompts"
                )
        return found


@dataclass
class EvalReport:
    """An evaluation report; `to_dict`/`from_dict` are its JSON file format (REPORT_KIND, REPORT_VERSION)."""

    model: str
    baseline: str
    prompts: dict
    judge: dict
    judge_trust: dict | None
    settings: dict
    results: EvalResults
    lengths: dict
    pathologies: dict
    alignment_tax: dict
    usage: dict
    timings_s: dict = field(default_factory=dict)
    judge_independence: dict | None = None  # judges.independence.check: is the judge the model's own?
    samples: list[dict] = field(default_factory=list)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    kind: str = REPORT_KIND
    version: int = REPORT_VERSION

    def to_dict(self) -> dict:
        data = asdict(self)
        head = {k: data.pop(k) for k in ("kind", "version", "created")}  # the file's order: kind first
        return head | data

    @classmethod
    def from_dict(cls, data: dict) -> "EvalReport":
        names = {f.name for f in fields(cls)}
        results = {k: v for k, v in data["results"].items() if k in {f.name for f in fields(EvalResults)}}
        return cls(**{k: v for k, v in data.items() if k in names and k != "results"}, results=EvalResults(**results))

    @property
    def warnings(self) -> list[str]:
        """Every reason to doubt the verdict, loudest first: the judge judged its own model or shares its
        training data, the judge was forced at chance or is unmeasured, its length bias exceeds the people's, a
        length- or style-controlled win rate far from the raw one."""
        trust = self.judge_trust or {}
        found = [(self.judge_independence or {}).get("warning")]
        found += trust.get("warnings") or [trust.get("warning")]  # reports before the list had one line
        found += self.results.control_warnings
        return [w for w in found if w]

    @property
    def warning(self) -> str | None:
        return " | ".join(self.warnings) or None


def remember_in_model_card(registry, model: str, report: EvalReport, path: Path) -> None:
    """When the evaluated model is a training run's, its card and model card (README.md) keep the result."""
    from ...training.model_card import record_evaluation

    try:
        folder = registry.resolve(model).folder
    except (UserError, AttributeError):
        return  # a remote model: no run folder
    run_dir = folder.parent
    if folder.name != "model" or not (run_dir / "card.json").is_file():
        return
    r, tax = report.results, report.alignment_tax or {}
    record_evaluation(
        run_dir,
        {
            "baseline": report.baseline,
            "judge": report.judge["name"],
            "n": r.n,
            "wins": r.wins,
            "ties": r.ties,
            "losses": r.losses,
            "win_rate": r.win_rate,
            "win_rate_ci": r.win_rate_ci,
            "perplexity_change_pct": tax.get("change_pct"),
            "report": str(path),
            "warning": report.warning,
            "created": report.created,
        },
    )


def reports_dir(workspace: Workspace) -> Path:
    return Path(workspace.root) / "evals"


def default_report_path(workspace: Workspace, model: str, baseline: str) -> Path:
    def short(name: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(name.rstrip("/")).name if "/" in name else name)[:40]

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return reports_dir(workspace) / f"{stamp}-{short(model)}-vs-{short(baseline)}.json"


def save_report(report: EvalReport, path: str | Path) -> Path:
    """Write the report as JSON via a temporary file renamed into place (never half a file)."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise UserError(f"the report must be a .json file, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(report.to_dict(), handle, ensure_ascii=False, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_report(path: str | Path) -> EvalReport:
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read the report {path.name}: {exc}") from None
    if not isinstance(report, dict) or report.get("kind") != REPORT_KIND:
        raise UserError(f"{path.name} is not an AlignStudio evaluation report")
    try:
        return EvalReport.from_dict(report)
    except (KeyError, TypeError) as exc:
        raise UserError(f"{path.name} is not a complete evaluation report ({exc})") from None


def list_reports(workspace: Workspace) -> list[Path]:
    """Saved reports, newest first."""
    folder = reports_dir(workspace)
    return sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
