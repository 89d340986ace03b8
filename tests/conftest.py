import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite runs on two workers (pyproject's addopts): a test keeps about one core busy on average (imports,
# servers, browsers, batch-1 decoding), so two finish sooner. Two torch processes whose idle OpenMP threads
# spin-wait on shared cores slow each other 10-25x (core/cpu_share.py), so here idle threads sleep. Set before
# torch is imported, in every worker and every subprocess they start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The files that take longest, longest first: xdist hands out whole files in collection order, so starting
# these early keeps one worker from running them alone at the end. Only the order changes.
LONGEST_FILES = (
    "test_training_real.py",
    "test_reliability.py",
    "test_training_worker.py",
    "test_browser_label.py",
    "test_browser_current.py",
    "test_secrets.py",
    "test_reward_judge.py",
    "test_rounds.py",
    "test_training_browser.py",
    "test_judges_local.py",
    "test_browser_arena.py",
    "test_durability.py",
)


def pytest_configure(config):
    config.addinivalue_line("markers", "real_model: uses the real SmolLM2-135M (slower)")
    config.addinivalue_line("markers", "browser: drives Debian's chromium through Playwright")
    config.addinivalue_line("markers", "slow: longer integration test (still runs in CI)")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    position = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), position[id(item)]))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def shared_models_dir(tmp_path_factory) -> Path:
    """One model cache for the session, so the embedded model is converted at most once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def workspace(tmp_path):
    from alignstudio.core.workspace import Workspace

    return Workspace.open(tmp_path / "ws")


@pytest.fixture
def store(workspace):
    from alignstudio.core.store import Store

    s = Store(workspace.db_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def ws(request, tmp_path_factory):
    """A workspace shared by one module's tests, for modules whose runs are trained once (module-scoped
    fixtures) and read by several tests; `workspace` is a test's own."""
    from alignstudio.core.workspace import Workspace

    return Workspace.open(tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_")) / "ws")


@pytest.fixture(scope="module")
def ws_store(ws):
    """The store of the module's workspace `ws` (`store` is a test's own)."""
    from alignstudio.core.store import Store

    s = Store(ws.db_path)
    yield s
    s.close()


@pytest.fixture(name="services")
def stand_in_services(workspace, store, tmp_path):
    """What the Train tab's handlers use, with a stand-in training worker (`stand_in_worker.STAND_IN`) instead of
    TRL. A module that needs the real services defines its own `services`."""
    from stand_in_worker import STAND_IN

    from alignstudio.services.container import Services
    from alignstudio.training.run_queue import RunManager

    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    runs = RunManager(workspace, store, command=[sys.executable, str(script)])
    services = Services.assemble(workspace, store, "smollm2", runs)
    yield services
    services.close()
    runs.close()


@pytest.fixture(scope="session")
def real_workspace(tmp_path_factory):
    """A workspace shared by the real-model tests, so SmolLM2 is converted once per session."""
    from alignstudio.core.workspace import Workspace

    return Workspace.open(tmp_path_factory.mktemp("real") / "ws")


@pytest.fixture(scope="session")
def second_tiny_model_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """Another tiny model (different weights) for two-model tests."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny2") / "tiny-llama-b", seed=1)
