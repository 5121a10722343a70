from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from med import AuthMethod, InvalidInput, NotFound, Profile
from med.config import (
    default_profile_name,
    dump_toml,
    load_profile,
    load_profiles,
    remove_profile,
    save_profile,
)

EWS = "https://mail.musterstadt.example/EWS/Exchange.asmx"


def test_saved_profile_loads_back_and_becomes_default(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "config.toml"
    prof = Profile(
        "buero",
        EWS,
        "assistenz@musterstadt.example",
        AuthMethod.KERBEROS,
        mailboxes=("chef@musterstadt.example", "functional:poststelle@musterstadt.example"),
        ca_bundle="/etc/ssl/lab.pem",
    )
    save_profile(path, prof)
    assert load_profile(path) == prof
    assert default_profile_name(path) == "buero"
    assert path.stat().st_mode & 0o777 == 0o600


def test_other_tables_of_the_file_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[tui.keymap]\nnext-item = ["j", "down"]\n\n[bridge]\nname = "Ä \\"q\\""\n')
    save_profile(path, Profile("a", EWS, "x@musterstadt.example"))
    doc = tomllib.loads(path.read_text())
    assert doc["tui"]["keymap"]["next-item"] == ["j", "down"]
    assert doc["bridge"]["name"] == 'Ä "q"'


def test_no_password_is_ever_written(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_profile(path, Profile("a", EWS, "x@musterstadt.example"))
    assert "password" not in path.read_text().lower()


def test_missing_profile_says_how_to_add_one(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="profile add"):
        load_profile(tmp_path / "none.toml")


def test_invalid_settings_are_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[med.profiles.x]\nserver = "u"\nuser = "a@b.example"\npasword = "oops"\n')
    with pytest.raises(InvalidInput, match="pasword"):
        load_profiles(path)
    path.write_text('[med.profiles.x]\nserver = "u"\nuser = "a@b.example"\nauth = "magic"\n')
    with pytest.raises(InvalidInput, match="auth must be"):
        load_profiles(path)
    path.write_text("[med.profiles.x\n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_profiles(path)


def test_remove_profile_clears_the_default(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_profile(path, Profile("a", EWS, "x@musterstadt.example"))
    save_profile(path, Profile("b", EWS, "y@musterstadt.example"))
    remove_profile(path, "a")
    assert set(load_profiles(path)) == {"b"}
    assert default_profile_name(path) == "b"
    with pytest.raises(NotFound):
        remove_profile(path, "a")


def test_dump_toml_round_trips_nested_documents() -> None:
    doc = {"a": 1, "b": {"c": [1, 2], "d": {"e": True, "f": "x\ny"}}, "g": [{"h": 1}, {"h": 2}]}
    assert tomllib.loads(dump_toml(doc)) == doc
