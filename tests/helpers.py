"""Test helpers shared by every area: write a real config file based on the bundled config.toml."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# The files of ../shared/corpus the tests read, copied with their SOURCES.md and licences.
CORPUS = ROOT / "tests" / "data" / "corpus"


def base_config() -> dict:
    """The production config.toml minus its real sources, pointed at loopback only."""
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    raw["sources"] = []
    # Loopback only: nothing else can be fetched, whatever a fixture links to.
    raw["crawl"].update({"allow_hosts": ["127.0.0.1"], "only_allow_hosts": True, "delay": 0.0,
                         "concurrency_per_host": 8, "timeout": "5s", "retries": 1,
                         "parse_timeout": "10s"})
    raw["smtp"].update({"host": "127.0.0.1", "port": 8025, "security": "none", "rate_limit": 0})
    raw["smtp"].pop("user", None)
    raw["web"]["base_url"] = "http://127.0.0.1:8080"
    raw["digest"]["base_url"] = "http://127.0.0.1:8080"
    return raw


def write_config(directory: Path, sources: list[dict] | None = None, **sections: dict) -> Path:
    """Write config.toml into directory; keyword arguments update whole sections by key."""
    raw = copy.deepcopy(base_config())
    raw["sources"] = sources or []
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(raw.get(name), dict):
            raw[name].update(values)
        else:
            raw[name] = values
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def run_monitor(config_path: Path | None, *args: str, timeout: float = 180, env: dict | None = None,
                cwd: Path | None = None):
    """Run the real `monitor` command line in a child process."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "monitor"]
    if config_path is not None:
        command += ["--config", str(config_path)]
    full_env = dict(os.environ)
    full_env.pop("MONITOR_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd)


def feed_source(name: str, url: str, **extra) -> dict:
    return {"name": name, "url": url, "kind": "feed", "every": "1h", **extra}
