"""Imports point one way: ui/cli -> services -> training -> core; ui and cli import nothing from core but its
errors (services are their one door); only ui imports gradio; nothing imports ui but app.py and the CLI's serve
command."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "alignstudio"
RANK = {"core": 0, "training": 1, "services": 2, "cli": 3, "ui": 3}
UI_MAY_USE_FROM_CORE = ("alignstudio.core.errors",)
DOORS = ("ui", "cli")  # the layers that reach everything through services


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "alignstudio" else None


def _imports(path: Path) -> list[str]:
    """Every imported name, absolute: `from ..core import errors` gives alignstudio.core.errors."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    package = ["alignstudio", *parts[:-1]]  # relative imports count from the module's package
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def layer_problems() -> list[str]:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        layer = rel.parts[0] if len(rel.parts) > 1 else None
        for name in _imports(path):
            target = _layer(name)
            if name.split(".")[0] == "gradio" and layer != "ui":
                problems.append(f"{rel}: imports gradio outside ui/")
            if layer not in RANK or target not in RANK or target == layer:
                continue
            if target == "ui" and rel.as_posix() == "cli/serve.py":
                continue  # `alignstudio serve` starts the app
            if RANK[target] >= RANK[layer]:
                problems.append(f"{rel}: {layer} imports {name} (up or sideways)")
            elif layer in DOORS and target != "services" and not name.startswith(UI_MAY_USE_FROM_CORE):
                problems.append(
                    f"{rel}: {layer} imports {name} ({layer} goes through services; core only for its errors)"
                )
    return problems


def test_imports_point_one_way_and_ui_goes_through_services():
    problems = layer_problems()
    assert not problems, "\n".join(sorted(problems))


def test_a_cli_module_that_imports_the_store_or_training_is_refused(tmp_path):
    """The CLI has the UI's rule: a command that opened the store or built a run queue itself would go around
    the services."""
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        for rel, source in (
            ("cli/x.py", "from ..core.store import Store\n"),
            ("cli/y.py", "from ..training.run_queue import RunManager\n"),
            ("cli/z.py", "def run():\n    from ..core.registry import ModelRegistry\n"),
            ("cli/ok.py", "from ..core.errors import UserError\nfrom ..services.training import RunSpec\n"),
        ):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(source)
        problems = layer_problems()
    finally:
        PACKAGE = saved
    assert sorted(p.split(":")[0] for p in problems) == ["cli/x.py", "cli/y.py", "cli/z.py"], problems
    assert "cli imports alignstudio.core.store.Store" in " ".join(problems)


def test_the_check_sees_relative_module_imports(tmp_path):
    """`from ..training import spec` inside ui/ is a training import, not an import of `alignstudio.training`
    the package only (the check would be blind to it otherwise)."""
    assert "alignstudio.training.spec" in _imports_of("ui/x.py", "from ..training import spec\n", tmp_path)
    assert "alignstudio.core.errors.UserError" in _imports_of(
        "ui/x.py", "from ..core.errors import UserError\n", tmp_path
    )
    assert "alignstudio.core.store.Store" in _imports_of(
        "services/data/x.py", "from ...core.store import Store\n", tmp_path
    )


def _imports_of(rel: str, source: str, tmp_path: Path) -> list[str]:
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        return _imports(path)
    finally:
        PACKAGE = saved
