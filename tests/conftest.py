"""Shared fixtures: real servers in subprocesses, real envs built once.

The OCR envs are built once per test session into one data dir (under a file
lock, so parallel sessions share the build); tests that need a pristine data
dir make their own. Tests under tests/e2e are marked ``e2e``, so
``pytest tests/unit`` (or ``-m "not e2e"``) runs the fast ones alone.
"""

from pathlib import Path

import pytest

from support import Server, start_server

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (HERE / "e2e") in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(catalog=None, **kwargs) -> Server:
        server = start_server(tmp_path / f"s{len(servers)}", catalog, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory) -> Path:
    """One data dir for the session: each OCR env is built once and reused."""
    return tmp_path_factory.getbasetemp() / "shared-data"


@pytest.fixture(scope="session")
def ocr_server(tmp_path_factory, shared_data_dir):
    """The default catalog, served for the whole session (envs built on first use)."""
    server = start_server(tmp_path_factory.mktemp("ocr-server"), data_dir=shared_data_dir)
    yield server
    server.stop()
