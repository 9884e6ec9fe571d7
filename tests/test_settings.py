"""Settings: precedence, every failure names its source and key with a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from agnes_mcp.errors import ConfigError
from agnes_mcp.settings import AgnesSettings, load_settings

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.data_dir == tmp_path / "agnes-data"  # resolved against the working dir
    assert settings.system_db_path == tmp_path / "agnes-data" / "state" / "system.duckdb"
    assert int(settings.scan_caps.per_query_bytes) == 5 * 1024**3
    assert settings.base_url == "http://127.0.0.1:8000"


def test_precedence_flag_over_env_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "instance.yaml", "port: 8100\ninstance_name: FromFile\nhost: 127.0.0.2\n"
    )
    monkeypatch.setenv("AGNES_PORT", "8200")
    monkeypatch.setenv("AGNES_HOST", "127.0.0.3")
    settings = load_settings(config, port=8300)
    assert settings.port == 8300  # flag
    assert settings.host == "127.0.0.3"  # env beats file
    assert settings.instance_name == "FromFile"  # file beats default


def test_nested_env_and_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGNES_SCAN_CAPS__PER_QUERY_BYTES", "1GiB")
    monkeypatch.setenv("AGNES_ALLOWED_HOSTS", "agnes.example.com, *.example.org")
    settings = load_settings()
    assert int(settings.scan_caps.per_query_bytes) == 1024**3
    assert settings.allowed_hosts == ["agnes.example.com", "*.example.org"]


def test_config_found_in_data_dir(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    write(tmp_path / "d" / "instance.yaml", "instance_name: Inside\n")
    assert load_settings(data_dir=tmp_path / "d").instance_name == "Inside"


def test_agnes_config_env_points_at_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGNES_CONFIG", str(write(tmp_path / "x.yaml", "instance_name: ViaEnv\n")))
    assert load_settings().instance_name == "ViaEnv"


def test_unknown_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    config = write(
        tmp_path / "instance.yaml", "instance_name: A\nscan_caps:\n  per_query_byte: 1GiB\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = caught.value.message
    assert f"{config}, line 3" in message
    assert "scan_caps.per_query_byte" in message
    assert "did you mean 'per_query_bytes'" in message


def test_unknown_top_level_key_without_close_match_lists_valid_keys(tmp_path: Path) -> None:
    config = write(tmp_path / "instance.yaml", "zzzzzz: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "unknown key 'zzzzzz'" in caught.value.message
    assert "valid keys:" in caught.value.message and "data_dir" in caught.value.message


def test_bad_value_names_key_value_and_field_description(tmp_path: Path) -> None:
    config = write(tmp_path / "instance.yaml", "\n\nport: 99999\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = caught.value.message
    assert f"{config}, line 3" in message and "'port' = 99999" in message
    assert "less than or equal to 65535" in message
    assert "TCP port" in message  # the field's description is the suggestion


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGNES_PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "environment variable AGNES_PORT" in caught.value.message


def test_bad_flag_value_names_the_option() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(port=-1)
    assert "command-line option --port" in caught.value.message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = write(
        tmp_path / "instance.yaml", "port: nine\nlog_level: loud\nsources:\n  s:\n    optionz: {}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    problems = caught.value.details["problems"]
    keys = " ".join(problems)
    assert "'port'" in keys and "'log_level'" in keys
    assert "sources.s.optionz" in keys and "did you mean 'options'" in keys
    assert "sources.s.connector" in keys  # required field missing


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    config = write(tmp_path / "instance.yaml", "port: 8000\nhost: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(config) in caught.value.message and "line" in caught.value.message
    assert "not valid YAML" in caught.value.message


def test_non_mapping_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_settings(write(tmp_path / "list.yaml", "- a\n- b\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.yaml")
    # a folder (--config DATA_DIR) was told to check the file's permissions
    with pytest.raises(ConfigError, match="is a folder") as folder:
        load_settings(tmp_path)
    assert "instance.yaml" in (folder.value.hint or "")


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path / "empty.yaml", "")).port == 8000


def test_unknown_env_var_is_warned_with_suggestion(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AGNES_PROT", "1")
    monkeypatch.setenv("AGNES_TOKEN", "client-side, not a setting")
    load_settings()
    warnings = [r.getMessage() for r in caplog.records if r.name == "agnes.settings"]
    assert any("AGNES_PROT" in w and "AGNES_PORT" in w for w in warnings)
    assert not any("AGNES_TOKEN" in w for w in warnings)


def test_example_config_is_valid_and_covers_the_documented_areas() -> None:
    example = REPO / "config" / "instance.yaml.example"
    settings = load_settings(example)
    text = example.read_text()
    for key in (
        "instance_name",
        "company_domain",
        "data_dir",
        "host",
        "port",
        "scan_caps",
        "sources",
    ):
        assert f"{key}:" in text
    assert settings.sources, "the example shows at least one data source"


def test_every_field_has_a_description() -> None:
    from agnes_mcp.settings import ScanCaps, SourceSettings

    for model in (AgnesSettings, ScanCaps, SourceSettings):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


def test_public_url_and_wildcard_host_give_a_usable_base_url() -> None:
    assert load_settings(host="0.0.0.0", port=9000).base_url == "http://127.0.0.1:9000"
    settings = load_settings(public_url="https://agnes.example.com/")
    assert settings.base_url == "https://agnes.example.com"


@pytest.mark.parametrize(
    "url", ["https://example.com/agnes", "https://example.com/?x=1", "https://example.com/#a"]
)
def test_a_public_url_with_a_path_is_a_config_error(url: str) -> None:
    """A public_url under a path was accepted, though Agnes serves its routes at the root:
    OAuth discovery, the MCP endpoint and the printed URLs then named URLs no route answers."""
    with pytest.raises(ConfigError) as caught:
        load_settings(public_url=url)
    assert "public_url" in str(caught.value) and "origin only" in str(caught.value)
    assert (
        load_settings(public_url="https://example.com:8443").base_url == "https://example.com:8443"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"1: x\n", "is not a name"),
        (b"yes: 1\n", "is not a name"),
        (b"a: &a [*a]\n", "refers to itself"),
        (b"port: 1\nport: 2\n", "is set twice (first on line 1)"),
        (b"\xff\xfe\n", "is not UTF-8"),
        # a tag or a value that does not read as its type: PyYAML raises while building
        # the value (a bare ValueError for dates), after the document parsed
        (b'port: !!python/object:os.system ["id"]\n', "line 1, column 7 is not valid YAML"),
        (b"instance_name: !custom x\n", "could not determine a constructor for the tag"),
        (b"sources:\n  s:\n    description: 2026-13-45\n", "line 3, column 18"),
        (b"port: !!int eighty\n", "'eighty' is not a valid int"),
    ],
)
def test_odd_yaml_is_a_config_error_not_a_crash(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "instance.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert expected in caught.value.message and str(path) in caught.value.message


def test_malformed_json_in_a_structured_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGNES_SCAN_CAPS", "{bad")
    with pytest.raises(ConfigError, match="AGNES_SCAN_CAPS is not valid JSON"):
        load_settings()


def test_proxy_headers_are_believed_only_from_trusted_proxies() -> None:
    from agnes_mcp.serve import uvicorn_config

    plain = uvicorn_config(load_settings(), app=None)  # type: ignore[arg-type]
    assert plain.proxy_headers is False
    proxied = uvicorn_config(load_settings(trusted_proxies=["127.0.0.1"]), app=None)  # type: ignore[arg-type]
    assert proxied.proxy_headers is True and proxied.forwarded_allow_ips == "127.0.0.1"


def test_a_source_with_an_unknown_connector_or_wrong_options_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "instance.yaml",
        "sources:\n"
        "  shop:\n"
        "    connector: filez\n"
        "  drop:\n"
        "    connector: files\n"
        "    options: {pat: /srv, token: hunter2-secret}\n"
        "  bare:\n"
        "    connector: files\n"
        "  fine:\n"
        "    connector: files\n"
        "    options: {path: /not/there/yet}\n",  # folders are reached only when used
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = caught.value.message
    assert f"{config}, line 3: key 'sources.shop.connector'" in text
    assert "no connector named 'filez' is installed. Did you mean 'files'?" in text
    assert f"{config}, line 6: key 'sources.drop.options'" in text
    assert "unknown option 'pat' (Did you mean 'path'?" in text and "unknown option 'token'" in text
    assert "hunter2-secret" not in text  # an option's value is never echoed
    assert (
        "key 'sources.bare.options': the files connector's options: option 'path' is required"
        in text
    )
    assert "sources.fine" not in text
    monkeypatch.setenv("AGNES_SOURCES", '{"gen": {"connector": "sampel"}}')
    with pytest.raises(ConfigError, match=r"environment variable AGNES_SOURCES.*'sampel'"):
        load_settings()


def test_a_source_url_carrying_credentials_stops_the_start_without_echoing_them(
    tmp_path: Path,
) -> None:
    """A Jira or Keboola URL written as https://user:password@host passed the options'
    checks, and every message naming the site (a refused token, an unreachable host: the
    sync history in the system database, the server log, the API's error bodies) carried
    the password. Refused at start, for any connector's option, naming the option only."""
    config = write(
        tmp_path / "instance.yaml",
        "sources:\n"
        "  jira:\n"
        "    connector: jira\n"
        "    options:\n"
        "      url: https://robot:jira-pass-9d8c7b@jira.example.com\n"
        "      email: robot@example.com\n"
        "      token_env: JIRA_TOKEN\n"
        "  kbc:\n"
        "    connector: keboola\n"
        "    options: {url: 'https://kbc-tok-5e4f3a@connection.example.com', token_env: KBC}\n"
        "  fine:\n"
        "    connector: jira\n"
        "    options: {url: 'https://jira.example.com', email: a@example.com, token_env: T}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = caught.value.message
    said = "options: 'url': a URL with a user name or password in it"
    assert f"key 'sources.jira.options': the jira connector's {said}" in text
    assert f"key 'sources.kbc.options': the keboola connector's {said}" in text
    assert "jira-pass-9d8c7b" not in text and "kbc-tok-5e4f3a" not in text
    assert "sources.fine" not in text


# Every URL option of instance.yaml, as (the key an error names, YAML with HOST in it).
URL_OPTIONS = [
    (
        "sources.s.options",
        "sources:\n  s:\n    connector: keboola\n"
        "    options: {url: 'https://HOST', token_env: KBC}\n",
    ),
    (
        "sources.s.options",
        "sources:\n  s:\n    connector: jira\n"
        "    options: {url: 'https://HOST', email: a@example.com, token_env: T}\n",
    ),
    (
        "sources.s.options",
        "sources:\n  s:\n    connector: bigquery\n"
        "    options: {project: my-project, api_endpoint: 'https://HOST'}\n",
    ),
    ("auth.oidc.discovery_url", "auth:\n  oidc:\n    discovery_url: https://HOST/.well-known/x\n"),
    ("auth.google_groups.api_url", "auth:\n  google_groups:\n    api_url: https://HOST/v1\n"),
    ("public_url", "public_url: https://HOST\n"),
]


@pytest.mark.parametrize(("key", "yaml"), URL_OPTIONS)
@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("ex%2eample.com", "not a plain host name"),  # reached ex.ample.com
        ("conn%65ction.example.com", "not a plain host name"),
        ("bücher.example", "xn--bcher-kva.example"),  # a look-alike's real name, shown
        ("exam ple.com", "not a plain host name"),
        ("example.com:99999", "port that is not a number"),
    ],
)
def test_every_url_option_takes_a_host_only_as_written(
    tmp_path: Path, key: str, yaml: str, host: str, words: str
) -> None:
    """The marketplace refused a host git would look up under another name ('%xx'
    decoded, non-ASCII turned to xn--); instance.yaml's URL options took them, and were
    quietly rewritten (https://ex%2eample.com fetched ex.ample.com) or failed at the first
    sync. One rule for every URL option now: refused at start, naming the key."""
    config = write(tmp_path / "instance.yaml", yaml.replace("HOST", host))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = caught.value.message
    assert f"key '{key}'" in text and words in text, text
    fine = write(tmp_path / "fine.yaml", yaml.replace("HOST", "xn--bcher-kva.example:8443"))
    load_settings(fine)


@pytest.mark.parametrize(
    ("key", "yaml"),
    [
        (
            "auth.oidc.discovery_url",
            "auth:\n  oidc:\n    discovery_url: https://ada:idp-pw-77aa@idp.example.com/.well-known/openid-configuration\n",
        ),
        (
            "auth.google_groups.api_url",
            "auth:\n  google_groups:\n    api_url: https://ada:idp-pw-77aa@directory.example.com/v1\n",
        ),
    ],
)
def test_a_fetched_url_carrying_credentials_stops_the_start(
    tmp_path: Path, key: str, yaml: str
) -> None:
    """The sign-in provider's discovery URL and the Directory API's took a user name and
    password, which each failed fetch's message (the server log, the sign-in error) named."""
    config = write(tmp_path / "instance.yaml", yaml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = caught.value.message
    assert f"key '{key}'" in text and "holds a user name or password" in text, text
    assert "idp-pw-77aa" not in text


def test_a_secret_variable_a_setting_names_must_hold_one_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """auth.session_secret_env naming an unset variable was first read when the admin app
    mounted: the server had written its store and first admin, said it was serving, then
    logged a traceback and served no sign-in. A client id without its secret showed a
    button that could never work. Both now stop the start, naming the setting, its
    source and the variable, and never the value, before anything is written."""
    from cli import exit_codes
    from cli.main import main

    monkeypatch.setenv("AGNES_AUTH__SESSION_SECRET_ENV", "EXAMPLE_SESSION_KEY")
    monkeypatch.setenv("EXAMPLE_SESSION_KEY", "too-short-a-key")
    monkeypatch.delenv("AGNES_OIDC_CLIENT_SECRET", raising=False)
    config = write(tmp_path / "instance.yaml", "auth:\n  oidc:\n    client_id: agnes-web\n")
    data = tmp_path / "data"
    code = main(["serve", "--config", str(config), "--data-dir", str(data), "--port", "0"])
    err = capsys.readouterr().err
    assert code == exit_codes.CONFIG, err
    assert (
        "environment variable AGNES_AUTH__SESSION_SECRET_ENV: key 'auth.session_secret_env' = "
        "'EXAMPLE_SESSION_KEY': the environment variable this names, $EXAMPLE_SESSION_KEY, is "
        "unset or shorter than 32 characters." in err
    )
    assert (
        "key 'auth.oidc.client_secret_env' = 'AGNES_OIDC_CLIENT_SECRET': auth.oidc.client_id "
        "is set, but the environment variable this names, $AGNES_OIDC_CLIENT_SECRET, is unset"
        in err
    )
    assert "too-short-a-key" not in err and "Traceback" not in err
    assert not data.exists()  # nothing written

    monkeypatch.setenv("EXAMPLE_SESSION_KEY", "k" * 32)
    monkeypatch.setenv("AGNES_OIDC_CLIENT_SECRET", "s")
    settings = load_settings(config)
    assert settings.auth.session_secret_env == "EXAMPLE_SESSION_KEY"
    assert settings.auth.oidc.client_id == "agnes-web"
    monkeypatch.delenv("AGNES_OIDC_CLIENT_SECRET")
    monkeypatch.delenv("AGNES_AUTH__SESSION_SECRET_ENV")
    assert load_settings().auth.oidc.client_id is None  # no client id: no secret needed


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("per_query_bytes", "0"),  # every remote query refused
        ("per_user_daily_bytes", "99999999999999999999999GiB"),
        ("max_result_bytes", "2PiB"),
        ("max_result_rows", str(10**23)),  # past DuckDB's LIMIT (int64)
        ("max_snapshot_bytes", "0"),
    ],
)
def test_scan_caps_in_the_settings_are_bounded_as_a_change_at_run_time_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    """`agnes admin server-config --set` refused these, yet instance.yaml and the
    environment took them as the defaults the server ran with."""
    from agnes_mcp.server_config_admin import ServerConfigInvalid, parse_caps

    with pytest.raises(ServerConfigInvalid):
        parse_caps({key: value})
    env = f"AGNES_SCAN_CAPS__{key.upper()}"
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert f"environment variable {env}: key 'scan_caps.{key}'" in caught.value.message
    monkeypatch.delenv(env)
    config = write(tmp_path / "instance.yaml", f"scan_caps:\n  {key}: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert f"{config}, line 2: key 'scan_caps.{key}'" in caught.value.message
    assert load_settings(
        write(
            config,
            f"scan_caps:\n  {key}: 1PiB\n" if "bytes" in key else f"scan_caps:\n  {key}: 1000\n",
        )
    )


@pytest.mark.parametrize(
    ("env", "value", "read"),
    [
        ("AGNES_ALLOWED_HOSTS", '["a.example.com", "b.example.com"]', "allowed_hosts"),
        ("AGNES_AUTH__ALLOWED_DOMAINS", '["example.com"]', "auth.allowed_domains"),
        ("AGNES_MARKETPLACE__TOKEN_ENVS", "A_TOKEN, B_TOKEN", "marketplace.token_envs"),
        ("AGNES_MARKETPLACE__TOKEN_ENVS", '["A_TOKEN", "B_TOKEN"]', "marketplace.token_envs"),
    ],
)
def test_a_list_in_an_env_var_is_comma_separated_or_a_json_list(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, read: str
) -> None:
    """A JSON list was split at its commas ('["a.example.com"' accepted as a host name,
    matching nothing), and token_envs took JSON only: a comma-separated value was refused
    as "AGNES_MARKETPLACE is not valid JSON", naming another variable."""
    monkeypatch.setenv(env, value)
    found: object = load_settings()
    for part in read.split("."):
        found = getattr(found, part)
    assert found == (
        ["a.example.com", "b.example.com"]
        if env == "AGNES_ALLOWED_HOSTS"
        else ["example.com"]
        if "DOMAINS" in env
        else ["A_TOKEN", "B_TOKEN"]
    )
    monkeypatch.setenv(env, '["a.example.com"')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert f"environment variable {env}: key '{read}'" in caught.value.message
    assert "starts with '[' but is not a JSON list" in caught.value.message


def test_allowed_origins_must_be_origins(tmp_path: Path) -> None:
    """An entry without its scheme (`agnes.example.com`) or with a path was accepted and
    matched no browser's Origin (always scheme://host[:port]): the page stayed refused."""
    config = write(
        tmp_path / "instance.yaml",
        "allowed_origins:\n  - agnes.example.com\n  - https://tools.example.com/app\n"
        "  - http://localhost:3000\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = caught.value.message
    assert f"{config}, line 1: key 'allowed_origins'" in text
    assert "'agnes.example.com', 'https://tools.example.com/app' are not an origin" in text
    fine = write(config, "allowed_origins: [https://agnes.example.com, 'http://[::1]:3000']\n")
    assert load_settings(fine).allowed_origins == ["https://agnes.example.com", "http://[::1]:3000"]


def test_variables_the_settings_name_are_not_warned_as_unknown_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented AGNES_OIDC_CLIENT_SECRET (client_secret_env's default) and the
    example's AGNES_BIGQUERY_CREDENTIALS were warned about at every start as "matches no
    setting; it is ignored" (the latter "did you mean AGNES_QUERY_THREADS?"), though the
    server reads them. A misspelt setting is still warned about."""
    import logging

    config = write(
        tmp_path / "instance.yaml",
        "sources:\n  wh:\n    connector: bigquery\n    options:\n      project: my-project\n"
        "      credentials_env: AGNES_BIGQUERY_CREDENTIALS\n",
    )
    monkeypatch.setenv("AGNES_OIDC_CLIENT_SECRET", "s")
    monkeypatch.setenv("AGNES_AUTH__OIDC__CLIENT_ID", "agnes-web")
    monkeypatch.setenv("AGNES_BIGQUERY_CREDENTIALS", "{}")
    monkeypatch.setenv("AGNES_AUTH__SESSION_SECRET_ENV", "AGNES_SESSION_KEY")
    monkeypatch.setenv("AGNES_SESSION_KEY", "k" * 32)
    monkeypatch.setenv("AGNES_MARKETPLACE__TOKEN_ENVS", "AGNES_PLUGINS_TOKEN")
    monkeypatch.setenv("AGNES_PLUGINS_TOKEN", "t")
    monkeypatch.setenv("AGNES_PORTT", "1")
    with caplog.at_level(logging.WARNING, logger="agnes.settings"):
        load_settings(config)
    warned = [r.getMessage() for r in caplog.records if r.name == "agnes.settings"]
    assert warned == [
        "environment variable AGNES_PORTT matches no setting; did you mean AGNES_PORT?"
    ]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_an_empty_data_dir_is_refused_not_the_working_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """AGNES_DATA_DIR="" (a script's unset variable) or `data_dir: ""` was the working
    directory, which the server made 0700 and filled with state/ and the rest; an empty
    --data-dir fell back to ./agnes-data without a word."""
    from cli import exit_codes
    from cli.main import main

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for where, argv in (
        ("command-line option --data-dir", ["--data-dir", ""]),
        ("environment variable AGNES_DATA_DIR", []),
        (f"{tmp_path / 'empty.yaml'}, line 1", ["--config", str(tmp_path / "empty.yaml")]),
    ):
        write(tmp_path / "empty.yaml", 'data_dir: ""\n')
        with monkeypatch.context() as env:
            if where.startswith("environment"):
                env.setenv("AGNES_DATA_DIR", " ")
            code = main([command, *argv, "--port", "0"])
        err = capsys.readouterr().err
        assert code == exit_codes.CONFIG, err
        assert f"{where}: key 'data_dir'" in err and "is empty; name the folder" in err
        assert list(work.iterdir()) == []  # nothing written where it was run


def test_an_empty_host_is_refused_not_every_interface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """AGNES_HOST="" (or --host "") bound 0.0.0.0, every interface, while the banner
    printed http://127.0.0.1:PORT: the server was reachable from the network unannounced."""
    from cli import exit_codes
    from cli.main import main

    monkeypatch.setenv("AGNES_HOST", "")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "environment variable AGNES_HOST: key 'host' = '': is empty" in caught.value.message
    monkeypatch.delenv("AGNES_HOST")
    data = tmp_path / "data"
    code = main(["serve", "--host", " ", "--data-dir", str(data), "--port", "0"])
    err = capsys.readouterr().err
    assert code == exit_codes.CONFIG and "command-line option --host: key 'host'" in err, err
    assert not data.exists()


def test_a_public_url_with_a_password_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`public_url: https://user:password@agnes.example.com` was accepted and became the
    base URL every client is shown (the banner, OAuth discovery, /me's lines to paste);
    a URL setting refused for another reason echoed its password in the error."""
    monkeypatch.setenv("AGNES_PUBLIC_URL", "https://ops:hunter2@agnes.example.com")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "key 'public_url': holds a user name or password" in caught.value.message
    assert "hunter2" not in caught.value.message
    monkeypatch.setenv("AGNES_PUBLIC_URL", "https://ops:hunter2@agnes.example.com:99999")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "'https://***@agnes.example.com:99999'" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_trusted_proxies_must_be_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy named by host name passed the start, then each connection's admission
    failed with a traceback ("does not appear to be an IPv4 or IPv6 network")."""
    from agnes_mcp.http_protocol import _Admission

    monkeypatch.setenv("AGNES_TRUSTED_PROXIES", "127.0.0.1,proxy.example.com,10.0.0.300")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert (
        "environment variable AGNES_TRUSTED_PROXIES: key 'trusted_proxies' = "
        "'127.0.0.1,proxy.example.com,10.0.0.300': 'proxy.example.com', '10.0.0.300' are "
        "not an IP address or network" in caught.value.message
    )
    monkeypatch.setenv("AGNES_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, ::1")
    proxies = load_settings().trusted_proxies
    assert not _Admission(proxies)._counted("10.1.2.3")  # admission reads what it took


def test_allowed_hosts_must_be_host_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """`https://agnes.example.com` or `agnes.example.com:443` was accepted and matched no
    request (a Host header's name is compared without its port): every request through
    the proxy stayed 421 host_not_allowed."""
    monkeypatch.setenv("AGNES_ALLOWED_HOSTS", "https://agnes.example.com,agnes.example.com:443")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert (
        "'https://agnes.example.com', 'agnes.example.com:443' are not a host name"
        in caught.value.message
    )
    monkeypatch.setenv("AGNES_ALLOWED_HOSTS", "agnes.example.com,*.example.org,10.0.0.5,::1")
    assert load_settings().allowed_hosts == [
        "agnes.example.com",
        "*.example.org",
        "10.0.0.5",
        "::1",
    ]


@pytest.mark.parametrize("entry", ["@example.com", "*", "*.example.com", "exämple.com", "a@b.com"])
def test_an_allowed_domain_that_matches_no_e_mail_stops_the_start(
    tmp_path: Path, entry: str
) -> None:
    """auth.allowed_domains took '@example.com', '*' or '*.example.com', which match no
    e-mail's domain (compared as written): OIDC sign-in was refused to everyone, and the
    start said nothing. Refused at start, naming the key and the entry."""
    config = write(
        tmp_path / "instance.yaml", f"auth:\n  allowed_domains: [example.org, '{entry}']\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = caught.value.message
    assert "key 'auth.allowed_domains'" in text and repr(entry) in text, text
    assert f"{entry!r} is not an e-mail domain" in text
    fine = write(
        tmp_path / "fine.yaml",
        "auth:\n  allowed_domains: [Example.org, ' xn--bcher-kva.example']\n",
    )
    assert load_settings(fine).sign_in_domains == ["example.org", "xn--bcher-kva.example"]


@pytest.mark.parametrize(
    ("key", "yaml"),
    [
        ("auth.oidc.client_secret_env", "auth:\n  oidc:\n    client_secret_env: SECRET\n"),
        ("auth.session_secret_env", "auth:\n  session_secret_env: SECRET\n"),
        (
            "auth.google_groups.credentials_env",
            "auth:\n  google_groups:\n    credentials_env: SECRET\n",
        ),
    ],
)
def test_a_secret_pasted_where_its_variables_name_goes_is_not_echoed(
    tmp_path: Path, key: str, yaml: str
) -> None:
    """A client secret pasted into client_secret_env (it names the variable that holds
    it) failed the name's pattern, and the start's error, in the terminal and the service
    log, repeated the secret. Refused naming the key only."""
    secret = "GOCSPX-4f9a-Secret/Value+x"
    config = write(tmp_path / "instance.yaml", yaml.replace("SECRET", f"'{secret}'"))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = caught.value.message + str(caught.value.details)
    assert f"key '{key}'" in text and "value not shown" in text, text
    assert secret not in text and "4f9a" not in text


@pytest.mark.parametrize(
    ("key", "yaml"),
    [
        ("auth.oidc.client_secret_env", "auth:\n  oidc:\n    client_secret_env: SECRET\n"),
        ("auth.session_secret_env", "auth:\n  session_secret_env: SECRET\n"),
        (
            "auth.google_groups.credentials_env",
            "auth:\n  google_groups:\n    credentials_env: SECRET\n",
        ),
        ("marketplace.token_envs", "marketplace:\n  token_envs: [SECRET]\n"),
        (
            "sources.kbc.options",
            "sources:\n  kbc:\n    connector: keboola\n"
            "    options: {url: 'https://connection.example.com', token_env: SECRET}\n",
        ),
        (
            "sources.jira.options",
            "sources:\n  jira:\n    connector: jira\n    options: {url: "
            "'https://jira.example.com', email: a@example.com, token_env: JIRA_TOKEN, "
            "webhook_secret_env: SECRET}\n",
        ),
        (
            "sources.bq.options",
            "sources:\n  bq:\n    connector: bigquery\n"
            "    options: {project: my-project, credentials_env: SECRET}\n",
        ),
    ],
)
def test_a_token_shaped_like_a_variable_name_is_no_variable_name(
    tmp_path: Path, key: str, yaml: str
) -> None:
    """A token with no '-' or '/' in it (ghpAbc123..., typed where the variable's NAME
    goes) passed the old name shape (any letters): it was taken as a name, and every
    "unset variable" message (start, sync errors, the log) repeated it. A name is upper
    case, digits and '_' (one shape for every *_env), and a refused one is not shown."""
    secret = "ghpAbc123XyZ9"
    config = write(tmp_path / "instance.yaml", yaml.replace("SECRET", secret))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = caught.value.message + str(caught.value.details)
    assert f"key '{key}" in text, text
    assert secret not in text and "Abc123" not in text, text
