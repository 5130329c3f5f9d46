from __future__ import annotations

from pathlib import Path

import pytest

from docuelevate.env import (
    EnvError,
    env_bool,
    env_int,
    env_int_list,
    env_list,
    env_optional,
    env_path,
    env_secret,
    env_str,
)

STRONG = "kq3V9x-Lw82nRt0pZs7yUe4bHc1mJd6f"


def test_unset_string_gives_the_default():
    assert env_str("NAME", "fallback", environ={}) == "fallback"


def test_set_string_is_returned_as_is():
    assert env_str("NAME", "fallback", environ={"NAME": " spaced "}) == " spaced "


def test_optional_treats_empty_as_unset():
    assert env_optional("NAME", environ={"NAME": ""}) is None
    assert env_optional("NAME", environ={"NAME": "x"}) == "x"


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "on", " True "])
def test_bool_accepts_the_usual_spellings_of_true(raw):
    assert env_bool("FLAG", False, environ={"FLAG": raw}) is True


@pytest.mark.parametrize("raw", ["false", "0", "no", "off", "False"])
def test_bool_accepts_the_usual_spellings_of_false(raw):
    assert env_bool("FLAG", True, environ={"FLAG": raw}) is False


def test_bool_refuses_a_typo_and_names_the_variable():
    with pytest.raises(EnvError, match="AUTH_ENABLED='flase' is not a boolean"):
        env_bool("AUTH_ENABLED", True, environ={"AUTH_ENABLED": "flase"})


def test_bool_empty_value_gives_the_default():
    assert env_bool("FLAG", True, environ={"FLAG": ""}) is True


def test_int_parses_and_allows_underscores():
    assert env_int("SIZE", 1, environ={"SIZE": "1_048_576"}) == 1048576


def test_int_refuses_words_and_names_the_variable():
    with pytest.raises(EnvError, match="MAX_UPLOAD_SIZE='1GB' is not a whole number"):
        env_int("MAX_UPLOAD_SIZE", 1, environ={"MAX_UPLOAD_SIZE": "1GB"})


def test_int_enforces_bounds():
    with pytest.raises(EnvError, match="below the minimum of 10"):
        env_int("STEP_TIMEOUT", 600, minimum=10, environ={"STEP_TIMEOUT": "5"})
    with pytest.raises(EnvError, match="above the maximum of 200"):
        env_int("PER_PAGE", 50, maximum=200, environ={"PER_PAGE": "201"})


def test_list_splits_and_drops_blanks():
    assert env_list("HOSTS", environ={"HOSTS": "a, b,,c ,"}) == ["a", "b", "c"]
    assert env_list("HOSTS", ["x"], environ={}) == ["x"]


def test_int_list_parses_retry_delays():
    assert env_int_list("DELAYS", [1], environ={"DELAYS": "60,300,900"}) == [60, 300, 900]
    assert env_int_list("DELAYS", [1], environ={}) == [1]


def test_int_list_refuses_garbage():
    with pytest.raises(EnvError, match="TASK_RETRY_DELAYS must be comma-separated whole numbers"):
        env_int_list("TASK_RETRY_DELAYS", [1], environ={"TASK_RETRY_DELAYS": "60,soon"})
    with pytest.raises(EnvError, match="negative"):
        env_int_list("TASK_RETRY_DELAYS", [1], environ={"TASK_RETRY_DELAYS": "60,-1"})


def test_relative_path_is_taken_from_the_base(tmp_path):
    assert env_path("WORKDIR", Path("workdir"), base=tmp_path, environ={}) == tmp_path / "workdir"
    assert env_path("WORKDIR", Path("x"), base=tmp_path, environ={"WORKDIR": "/srv/w"}) == Path("/srv/w")


def test_value_can_come_from_a_file_without_its_trailing_newline(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(STRONG + "\n")
    assert env_str("SESSION_SECRET", environ={"SESSION_SECRET_FILE": str(secret_file)}) == STRONG


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(EnvError, match="SESSION_SECRET_FILE: cannot read"):
        env_str("SESSION_SECRET", environ={"SESSION_SECRET_FILE": str(tmp_path / "nope")})


def test_an_empty_value_leaves_room_for_its_file(tmp_path):
    (tmp_path / "s").write_text("from-file")
    assert env_str("X", environ={"X": "", "X_FILE": str(tmp_path / "s")}) == "from-file"


def test_setting_both_the_value_and_its_file_is_refused(tmp_path):
    (tmp_path / "s").write_text("x")
    with pytest.raises(EnvError, match="both set"):
        env_str("X", environ={"X": "a", "X_FILE": str(tmp_path / "s")})


def test_secret_accepts_a_strong_value():
    assert env_secret("SESSION_SECRET", min_length=32, required=True, environ={"SESSION_SECRET": STRONG})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("changeme", "placeholder"),
        ("your-secret-key", "placeholder"),
        ("a" * 40, "one character repeated"),
        ("short-but-random-Xy7", "shorter than 32"),
    ],
)
def test_secret_refuses_weak_values_without_echoing_them(value, reason):
    with pytest.raises(EnvError, match=reason) as excinfo:
        env_secret("SESSION_SECRET", min_length=32, required=True, environ={"SESSION_SECRET": value})
    assert "SESSION_SECRET" in str(excinfo.value)
    assert value not in str(excinfo.value)


def test_required_secret_must_be_set():
    with pytest.raises(EnvError, match="SESSION_SECRET is required"):
        env_secret("SESSION_SECRET", min_length=32, required=True, environ={})
    assert env_secret("SESSION_SECRET", min_length=32, required=False, environ={}) is None
