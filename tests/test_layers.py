"""Imports point down only: ui -> services -> core; only ui imports gradio; nothing imports ui."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "alignstudio"
RANK = {"core": 0, "services": 1, "training": 1, "cli": 2, "ui": 3}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "alignstudio" else None


def _imports(path: Path) -> list[str]:
    module = "alignstudio." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                found.append(".".join(base + ([node.module] if node.module else [])))
            else:
                found.append(node.module or "")
    return found


def test_no_back_edges_and_gradio_only_in_ui():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0]
        for name in _imports(path):
            if name.split(".")[0] == "gradio" and layer != "ui":
                problems.append(f"{path}: imports gradio outside ui/")
            target = _layer(name)
            if target in RANK and layer in RANK and RANK[target] > RANK[layer]:
                if not (layer == "cli" and target == "ui" and path.name == "serve.py"):
                    problems.append(f"{path}: {layer} imports {name}")
    assert not problems, "\n".join(problems)
