"""What Civility refuses to start with: a missing or placeholder secret key outside SQLite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service import create_app

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/unused"


def test_a_missing_secret_key_outside_the_embedded_sqlite_setup_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"CIVILITY_SECRET_KEY is not set.*token_hex"):
        create_app({"DATABASE_URL": POSTGRES, "INSTANCE_PATH": str(tmp_path)})
    assert not (tmp_path / "secret_key").exists()


def test_the_embedded_sqlite_setup_makes_and_keeps_its_own_key(tmp_path):
    first = create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"]
    again = create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"]
    assert first == again and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("secret", ["change-me", "CHANGEME", "secret", " password "])
@pytest.mark.parametrize("database", [None, POSTGRES])
def test_a_placeholder_secret_key_is_refused_on_any_database(tmp_path, secret, database):
    with pytest.raises(ValueError, match=r"known placeholder.*token_hex"):
        create_app({"SECRET_KEY": secret, "DATABASE_URL": database, "INSTANCE_PATH": str(tmp_path)})


def test_the_cli_says_how_to_make_a_key_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVILITY_")}
    env |= {"CIVILITY_DATABASE_URL": POSTGRES, "CIVILITY_INSTANCE_PATH": str(tmp_path)}
    civility = str(Path(sys.executable).parent / "civility")
    answer = subprocess.run(
        [civility, "routes"], env=env, capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 1
    assert answer.stderr.count("\n") == 1
    assert "CIVILITY_SECRET_KEY is not set" in answer.stderr and "token_hex" in answer.stderr


def test_compose_gives_the_secret_key_no_default():
    compose = (ROOT / "compose.yaml").read_text()
    lines = re.findall(r"CIVILITY_SECRET_KEY: (.*)", compose)
    assert lines, "every Civility service needs the key"
    for value in lines:
        assert value.startswith("${CIVILITY_SECRET_KEY:?"), value  # required, never defaulted
