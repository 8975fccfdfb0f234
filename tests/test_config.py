"""Config checking: every bad file in tests/configs/bad names its key and problem
exactly (first line `# expect: ...`); the good ones load and round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from phone.config import (
    DEFAULT_CODECS,
    REDACTED,
    ConfigError,
    ControlSettings,
    SecondCall,
    Transport,
    default_storage_path,
    load_config,
    parse_config,
)

CONFIGS = Path(__file__).parent / "configs"
BAD = sorted((CONFIGS / "bad").glob("*.toml"))
GOOD = sorted((CONFIGS / "good").glob("*.toml"))


def expected_message(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect:' line"
    return first.removeprefix("# expect: ")


def test_there_are_enough_bad_configs() -> None:
    assert len(BAD) >= 12


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_names_key_and_problem(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == expected_message(path)
    assert str(caught.value) == f"{caught.value.key}: {caught.value.message}"


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_config_round_trips(path: Path) -> None:
    config = load_config(path)
    assert parse_config(config.as_dict()) == config


def test_registrar_config_defaults() -> None:
    config = load_config(CONFIGS / "good" / "registrar.toml")
    account = config.account
    assert account.username == "alice"
    assert account.transport is Transport.UDP
    assert (account.port, account.rtp_port, account.reg_expires) == (0, 0, 300)
    assert account.outbound_proxy is None and account.display_name is None
    assert config.calls.accept_only_from_proxy is True
    assert config.control == ControlSettings()
    assert [(c.name, c.uri, c.blf) for c in config.contacts] == [
        ("Bob", "sip:bob@example.com", True),
        ("Carol", "sip:carol@example.com", False),
    ]
    assert config.calls.reject_code == 486
    assert config.calls.second_call is SecondCall.BUSY
    assert config.calls.codecs == DEFAULT_CODECS
    assert (config.calls.long_press_ms, config.calls.no_answer_timeout_s) == (800, 60)
    assert config.board.settings == {}
    assert config.plugins == {}
    assert config.log_level == "INFO"


def test_direct_mode_takes_port_from_uri_and_needs_no_password() -> None:
    account = load_config(CONFIGS / "good" / "direct.toml").account
    assert account.registrar is None
    assert account.port == 5062
    assert account.password == ""


@pytest.mark.parametrize(("transport", "port"), [("udp", 5060), ("tcp", 5060), ("tls", 5061)])
def test_direct_mode_without_uri_port_listens_on_the_standard_port(
    transport: str, port: int
) -> None:
    data = {
        "account": {"uri": "sip:alice@192.0.2.7", "transport": transport},
        "board": {"kind": "virtual", "buttons": 1},
    }
    assert parse_config(data).account.port == port


def test_full_config_values() -> None:
    path = CONFIGS / "good" / "full.toml"
    config = load_config(path)
    account = config.account
    assert account.transport is Transport.TLS
    assert account.username == "alice-auth"
    assert account.outbound_proxy == "sips:proxy.example.com;lr"
    assert account.tls_verify is False
    assert config.contacts[1].uri == "sips:conf@[2001:db8::1]:5061"
    assert config.board.kind == "rpi"
    assert config.board.settings == {"capture_pcm": "hw:1,0", "mixer": "PCM"}
    assert config.calls.second_call is SecondCall.RING
    assert config.calls.codecs == ("PCMU/8000", "opus/48000/2")
    assert config.calls.accept_only_from_proxy is False
    assert config.control.group == "phone"
    assert config.control.screenshot_dir == str(path.parent / "shots")
    assert config.storage.path == str(path.parent / "state" / "phone.db")
    assert config.plugins["call_log"].enabled is True
    assert config.plugins["call_log"].settings == {"max_entries": 50}
    assert config.plugins["xcap"].enabled is False
    assert config.log_level == "DEBUG"


def test_secrets_never_reach_repr_or_redacted() -> None:
    config = load_config(CONFIGS / "good" / "full.toml")
    assert "s3cret" not in repr(config)
    redacted = config.redacted()
    assert redacted["account"]["password"] == REDACTED
    assert redacted["plugins"]["xcap"]["password"] == REDACTED
    assert redacted["control"]["token"] == REDACTED
    assert "s3cret" not in repr(redacted)
    assert redacted["plugins"]["xcap"]["list"] == "buddies"


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "phone.toml"
    path.write_text('[account]\nuri = "sip:alice@example.com"\npassword s3cret\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == str(path)
    assert "invalid TOML" in caught.value.message
    assert "line 3" in caught.value.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="cannot read: No such file or directory"):
        load_config(path)


def test_tls_ca_file_is_relative_to_the_config_and_must_exist(tmp_path: Path) -> None:
    text = (
        '[account]\nuri = "sip:alice@example.com"\npassword = "p"\n'
        'registrar = "sip:example.com"\ntransport = "tls"\ntls_ca_file = "ca.pem"\n'
        '[board]\nkind = "virtual"\nbuttons = 2\n'
    )
    path = tmp_path / "phone.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"account.tls_ca_file: no such file: {str(tmp_path / 'ca.pem')!r}"
    (tmp_path / "ca.pem").write_text("not checked here")
    config = load_config(path)
    assert config.account.tls_ca_file == str(tmp_path / "ca.pem")
    assert config.account.transport is Transport.TLS


def test_default_storage_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_storage_path() == str(tmp_path / "simplephone" / "phone.db")
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_storage_path() == str(tmp_path / ".local" / "state" / "simplephone" / "phone.db")


def test_transport_from_uri_parameter() -> None:
    data = {
        "account": {
            "uri": "sip:alice@example.com;transport=TCP",
            "password": "p",
            "registrar": "sip:example.com",
        },
        "board": {"kind": "virtual", "buttons": 2},
    }
    config = parse_config(data)
    assert config.account.transport is Transport.TCP
    assert config.account.uri == "sip:alice@example.com;transport=TCP"


def test_board_kinds_are_the_installed_boards(monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"account": {"uri": "sip:alice@192.0.2.7"}, "board": {"kind": "pi", "buttons": 1}}
    monkeypatch.setattr("phone.config.board_kinds", lambda: ("pi", "virtual"))
    assert parse_config(data).board.kind == "pi"
    monkeypatch.setattr("phone.config.board_kinds", lambda: ("virtual",))
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert str(caught.value) == "board.kind: must be one of virtual, got 'pi'"


def test_config_error_carries_key_and_message() -> None:
    error = ConfigError("contacts[0].uri", "missing")
    assert isinstance(error, ValueError)
    assert (error.key, error.message, str(error)) == (
        "contacts[0].uri",
        "missing",
        "contacts[0].uri: missing",
    )
