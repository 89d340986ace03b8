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


def pytest_configure(config):
    config.addinivalue_line("markers", "real_model: uses the real SmolLM2-135M (slower)")
    config.addinivalue_line("markers", "browser: drives Debian's chromium through Playwright")
    config.addinivalue_line("markers", "slow: longer integration test (still runs in CI)")


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
