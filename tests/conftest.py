"""Fixtures: real files, real servers on loopback. Area-specific fixtures live in tests/fixtures_*.py."""

from __future__ import annotations

import pytest

from monitor.config import load_config
from monitor.store import open_db
from tests.helpers import write_config

pytest_plugins = [
    "tests.fixtures_servers",
    "tests.fixtures_digest",
    "tests.fixtures_mail",
    "tests.fixtures_web",
    "tests.fixtures_desk",
]


@pytest.fixture
def config_path(tmp_path):
    return write_config(tmp_path)


@pytest.fixture
def config(config_path):
    return load_config(config_path)


@pytest.fixture
def db(config):
    database = open_db(config.storage.database)
    yield database
    database.close()
