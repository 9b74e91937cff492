"""config.toml: the bundled file is valid; bad files are refused naming the file and the key."""

from __future__ import annotations

import tomllib

import pytest
import tomli_w

from monitor.config import load_config
from monitor.errors import ConfigError
from tests.helpers import ROOT, base_config, feed_source, run_monitor, write_config


def test_bundled_config_is_valid_and_broad():
    config = load_config(ROOT / "config.toml")
    real = [s for s in config.sources if s.url.startswith("https://") and "127.0.0.1" not in s.url]
    assert len(real) >= 40
    assert len({s.language for s in real if s.language}) >= 7
    assert config.crawl.allow_hosts == ()  # production fetches only public addresses
    assert config.storage.database == ROOT / "data" / "monitor.db"


def test_check_config_accepts_the_bundled_file():
    result = run_monitor(ROOT / "config.toml", "check-config")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def _write_raw(tmp_path, raw: dict):
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def _source(**overrides):
    return {**feed_source("ngo-feed", "https://example.org/feed.xml"), **overrides}


def _with_sources(*sources):
    raw = base_config()
    raw["sources"] = list(sources)
    return raw


def _crawl_unknown():
    raw = base_config()
    raw["crawl"]["proxy"] = "http://10.0.0.1:3128"
    return raw


def _unknown_section():
    raw = base_config()
    raw["mailer"] = {"host": "localhost"}
    return raw


def _bad_timezone():
    raw = base_config()
    raw["digest"]["timezone"] = "Europe/Atlantis"
    return raw


INVALID = {
    "unknown top-level section": (_unknown_section, "mailer", "unknown key"),
    "unknown key in [crawl]": (_crawl_unknown, "crawl.proxy", "unknown key"),
    "bad kind": (lambda: _with_sources(_source(kind="podcast")), "kind", "must be one of"),
    "duplicate name": (
        lambda: _with_sources(_source(), _source(url="https://example.org/b.xml")),
        "name",
        "used by another source",
    ),
    "missing url": (
        lambda: _with_sources({"name": "no-url", "kind": "feed"}),
        "url",
        "is required",
    ),
    "javascript url": (
        lambda: _with_sources(_source(url="javascript:alert(1)")),
        "url",
        "http:// or https://",
    ),
    "bad every": (lambda: _with_sources(_source(every="hourly")), "every", "not a duration"),
    "zero every": (lambda: _with_sources(_source(every="0m")), "every", "longer than zero"),
    "page without selector": (
        lambda: _with_sources(_source(kind="page")),
        "link_selector",
        "required for a 'page' source",
    ),
    "unknown region": (
        lambda: _with_sources(_source(regions=["atlantis"])),
        "regions",
        "'atlantis' is not a configured region",
    ),
    "bad time zone": (_bad_timezone, "digest.timezone", "not a known time zone"),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_invalid_config_is_refused_with_file_and_key(tmp_path, case):
    build, key, message = INVALID[case]
    path = _write_raw(tmp_path, build())
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    sentence = str(caught.value)
    assert sentence.startswith(f"{path}: ") and key in caught.value.key and message in sentence


@pytest.mark.parametrize(
    "case", ["unknown key in [crawl]", "page without selector", "bad time zone"]
)
def test_cli_refuses_invalid_config_with_exit_code_2_and_no_traceback(tmp_path, case):
    build, key, message = INVALID[case]
    path = _write_raw(tmp_path, build())
    result = run_monitor(path, "check-config")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith("Invalid configuration:") and "\n" not in line
    assert str(path) in line and key in line and message in line, line


def test_source_errors_name_the_source(tmp_path):
    path = _write_raw(
        tmp_path, _with_sources(_source(), _source(name="bad-one", every="sometimes"))
    )
    with pytest.raises(ConfigError, match=r"sources\[1\] \(bad-one\)\.every"):
        load_config(path)


def test_toml_syntax_error_is_refused(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[storage]\ndatabase = "data/monitor.db\n', encoding="utf-8")
    result = run_monitor(path, "check-config")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr and "not valid TOML" in result.stderr
    assert "line 2" in result.stderr  # where to look


def test_missing_file_is_refused(tmp_path):
    path = tmp_path / "nowhere.toml"
    result = run_monitor(path, "check-config")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr and "does not exist" in result.stderr


def test_missing_default_file_in_working_directory(tmp_path):
    result = run_monitor(None, "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "config.toml" in result.stderr and "does not exist" in result.stderr


def _named(directory, label):
    """A valid config whose single source's name tells which file was loaded."""
    return write_config(directory, sources=[feed_source(label, "https://example.org/feed.xml")])


def test_lookup_order_option_then_environment_then_working_directory(tmp_path):
    cwd_config = _named(tmp_path / "cwd", "from-cwd")
    env_config = _named(tmp_path / "env", "from-env")
    option_config = _named(tmp_path / "option", "from-option")
    cwd = cwd_config.parent

    def loaded(config_path, env):
        result = run_monitor(config_path, "sources", env=env, cwd=cwd)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[0]

    assert loaded(None, {}) == "from-cwd"
    assert loaded(None, {"MONITOR_CONFIG": str(env_config)}) == "from-env"
    assert loaded(option_config, {"MONITOR_CONFIG": str(env_config)}) == "from-option"
    # Each config's relative database lives next to that config, not in the working directory.
    assert (tmp_path / "option" / "data" / "monitor.db").exists()
    assert (tmp_path / "env" / "data" / "monitor.db").exists()


def test_relative_database_is_relative_to_the_config_folder(tmp_path, monkeypatch):
    path = write_config(tmp_path / "conf", storage={"database": "archive/news.db"})
    monkeypatch.chdir(tmp_path)
    assert load_config(path).storage.database == (tmp_path / "conf" / "archive" / "news.db")
    absolute = tmp_path / "elsewhere.db"
    path = write_config(tmp_path / "conf2", storage={"database": str(absolute)})
    assert load_config(path).storage.database == absolute


def test_written_test_config_round_trips():
    # base_config() is what every area's tests start from: it must itself be valid TOML data.
    assert tomllib.loads(tomli_w.dumps(base_config()))["crawl"]["allow_hosts"] == ["127.0.0.1"]


@pytest.mark.parametrize("every", [0, -5])
def test_numeric_every_must_be_positive(tmp_path, every):
    path = _write_raw(tmp_path, _with_sources(_source(every=every)))
    with pytest.raises(ConfigError, match="every: must be longer than zero"):
        load_config(path)


def test_empty_database_path_is_refused(tmp_path):
    path = _write_raw(tmp_path, {**base_config(), "storage": {"database": ""}})
    with pytest.raises(ConfigError, match="storage.database"):
        load_config(path)
