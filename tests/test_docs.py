"""The public interfaces (CLI commands, config keys, database tables) are documented.

Like Datasette's test_docs.py: adding a command, a config key or a table without documenting it
in README.md or docs/*.md fails here.
"""

from __future__ import annotations

import re
import tomllib

import click
import pytest

from monitor.cli import cli
from monitor.store import open_db
from tests.helpers import ROOT


def _docs() -> str:
    parts = [(ROOT / "README.md").read_text(encoding="utf-8")]
    parts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(parts)


def _commands(group: click.Group, prefix: str = ""):
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        yield prefix + name
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + name + " ")


@pytest.mark.parametrize("command", list(_commands(cli)))
def test_every_cli_command_is_documented(command):
    assert re.search(r"monitor(\s+--config\s+\S+)?\s+" + re.escape(command) + r"\b", _docs()), \
        f"`monitor {command}` is not documented in README.md or docs/"


def _config_keys():
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    for section, table in raw.items():
        if section in ("regions", "topics"):
            continue  # the taxonomy's own keys are documented in docs/taxonomy.md as a language
        if section == "sources":
            keys = {key for source in table for key in source}
            yield from (("sources", key) for key in sorted(keys))
            continue
        for key, value in table.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                for sub in sorted({k for item in value for k in item}):
                    yield (f"{section}.{key}", sub)
            yield (section, key)


@pytest.mark.parametrize("section,key", list(_config_keys()))
def test_every_config_key_is_documented(section, key):
    docs = _docs()
    assert f"`{key}`" in docs or f"{key} =" in docs, f"config key [{section}] {key} is undocumented"


def test_every_table_is_documented(tmp_path):
    db = open_db(tmp_path / "t.db")
    docs = _docs()
    internal = {"sqlite_sequence"}
    missing = [t for t in db.table_names()
               if t not in internal and not t.startswith("items_fts_") and f"`{t}`" not in docs]
    assert not missing, f"tables not documented: {missing}"


def test_readme_has_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/demo.sh" in readme and "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
