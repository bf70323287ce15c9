"""The Lenses SQL processor provider, called as the engine calls it, against a fake HQ."""

from __future__ import annotations

import base64
import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.http_api import ApiError
from components.lenses_api import LensesClient
from components.processors import ProcessorProvider, read_sql
from components.streams import DERIVED_STREAMS
from tests.fake_lenses import FakeLenses, lenses_fixture  # noqa: F401 - the `lenses` fixture

SQL = "INSERT INTO heart_rate_device_topic SELECT STREAM * FROM device_data;"


def fast(**overrides: Any) -> ProcessorProvider:
    """Short waits, so retries and timeouts cost milliseconds."""
    return ProcessorProvider(**{"timeout": 2.0, "retries_on_conflict": 2, "backoff": 0.01,
                                **overrides})


def props(lenses: FakeLenses, **overrides: Any) -> dict[str, Any]:
    """Inputs as the engine passes them, `__provider` included."""
    return {
        "__provider": "serialized", "hq_url": lenses.url, "environment": "dev",
        "username": lenses.username, "password": lenses.password, "name": "heart_rate",
        "sql": SQL, "description": "heart rate", **overrides,
    }


def failure(password: str, call: Callable[[], object]) -> ApiError:
    """The ApiError `call` raises, checked to carry `password` nowhere in its whole chain."""
    with pytest.raises(ApiError) as raised:
        call()
    text = "".join(traceback.format_exception(raised.value))
    assert password not in text, f"the password leaked into: {text}"
    return raised.value


def test_create_then_read_returns_what_was_created(lenses: FakeLenses) -> None:
    provider = fast()
    created = provider.create(props(lenses))
    read = provider.read(created.id, {**props(lenses), **created.outs})
    assert read.id == created.id
    assert read.outs == created.outs
    assert created.outs["processor_id"] == created.id
    assert "__provider" not in created.outs


def test_create_sends_an_in_process_processor_with_the_session_cookie(lenses: FakeLenses) -> None:
    fast().create(props(lenses))
    [post] = lenses.calls("POST")
    assert post.path == "/api/v1/environments/dev/proxy/api/v2/streams"
    assert post.body == {"name": "heart_rate", "sql": SQL, "description": "heart rate",
                         "deployment": {"mode": "IN_PROC"}}
    assert post.headers["Cookie"].startswith("session_id=")


def test_create_finds_the_id_by_name_when_the_answer_has_none(lenses: FakeLenses) -> None:
    lenses.create_returns_id = False
    created = fast().create(props(lenses))
    assert lenses.processors[created.id]["application"]["name"] == "heart_rate"


def test_create_leaves_out_an_empty_description(lenses: FakeLenses) -> None:
    """The API wants a description of at least one character, or none."""
    created = fast().create(props(lenses, description=""))
    [post] = lenses.calls("POST")
    assert "description" not in post.body
    read = fast().read(created.id, {**props(lenses, description=""), **created.outs})
    assert read.outs["description"] == ""
    assert fast().diff(created.id, read.outs, props(lenses, description="")).changes is False


@pytest.mark.parametrize("status", [200, 204])
def test_login_keeps_the_session_cookie_for_later_calls(lenses: FakeLenses, status: int) -> None:
    lenses.login_status = status
    client = LensesClient.connect(lenses.url, lenses.username, lenses.password, timeout=2.0)
    assert client.list_processors("dev") == []


@pytest.mark.parametrize("key", ["sql", "name", "environment", "hq_url"])
def test_diff_replaces_when_what_the_processor_is_changes(lenses: FakeLenses, key: str) -> None:
    olds = {**props(lenses), "processor_id": "proc-1"}
    diff = fast().diff("proc-1", olds, props(lenses, **{key: "changed"}))
    assert diff.changes is None, "changed: the engine names the keys"
    assert diff.replaces == [key]
    assert diff.delete_before_replace, "names are unique in Lenses: delete first"


def test_diff_of_only_a_new_password_updates_in_place_without_calls(lenses: FakeLenses) -> None:
    provider = fast()
    olds = {**props(lenses), "processor_id": "proc-1"}
    news = props(lenses, password="rotated-Pa55")
    diff = provider.diff("proc-1", olds, news)
    assert diff.changes is None, "changed: the engine names the keys"
    assert diff.replaces == []
    updated = provider.update("proc-1", olds, news)
    assert updated.outs is not None and updated.outs["password"] == "rotated-Pa55"
    assert lenses.requests == [], "a credentials-only update touches nothing remote"


def test_diff_ignores_the_serialized_provider_and_surrounding_whitespace(
    lenses: FakeLenses,
) -> None:
    olds = {**props(lenses), "processor_id": "proc-1", "__provider": "old"}
    diff = fast().diff("proc-1", olds, props(lenses, sql=f"\n{SQL}\n", __provider="new"))
    assert diff.changes is False
    assert diff.replaces == []


def test_read_after_an_out_of_band_delete_reports_it_gone(lenses: FakeLenses) -> None:
    provider = fast()
    created = provider.create(props(lenses))
    lenses.drop(created.id)
    read = provider.read(created.id, {**props(lenses), **created.outs})
    assert read.id is None
    assert read.outs == {}


def test_read_after_a_description_changed_in_lenses_shows_it_as_drift(
    lenses: FakeLenses,
) -> None:
    provider = fast()
    created = provider.create(props(lenses))
    lenses.set_description(created.id, "edited in the UI")
    read = provider.read(created.id, {**props(lenses), **created.outs})
    assert read.outs["description"] == "edited in the UI"
    assert read.inputs is not None and read.inputs["description"] == "edited in the UI"
    assert provider.diff(created.id, read.outs, props(lenses)).replaces == ["description"]


def test_read_takes_name_sql_and_description_from_where_hq_puts_them(
    lenses: FakeLenses,
) -> None:
    """`application.name`, `application.sql`, `metadata.description`; nothing at the top."""
    provider = fast()
    created = provider.create(props(lenses))
    live = lenses.processors[created.id]
    assert {"name", "sql", "description"}.isdisjoint(live), "the test server's shape"
    read = provider.read(created.id, {**props(lenses), **created.outs})
    assert (read.outs["name"], read.outs["sql"], read.outs["description"]) == (
        "heart_rate", SQL, "heart rate")


def test_find_matches_the_name_under_application(lenses: FakeLenses) -> None:
    other = lenses.add("blood_pressure", SQL)
    mine = lenses.add("heart_rate", SQL)
    client = LensesClient.connect(lenses.url, lenses.username, lenses.password, timeout=2.0)
    found = client.find("dev", "heart_rate")
    assert found is not None and found["id"] == mine != other
    assert client.find("dev", "temperature") is None


def test_an_agent_error_shows_its_field_errors(lenses: FakeLenses) -> None:
    error = failure(lenses.password, lambda: fast().create(props(lenses, sql="")))
    assert error.status == 400
    assert "The request input was invalid; sql: is required (min length 1)" in str(error)


def test_read_after_an_out_of_band_sql_change_shows_the_live_sql(lenses: FakeLenses) -> None:
    provider = fast()
    created = provider.create(props(lenses))
    lenses.set_sql(created.id, "INSERT INTO elsewhere SELECT STREAM * FROM device_data;")
    read = provider.read(created.id, {**props(lenses), **created.outs})
    assert read.outs["sql"] == "INSERT INTO elsewhere SELECT STREAM * FROM device_data;"
    assert read.inputs is not None and read.inputs["sql"] == read.outs["sql"]
    assert provider.diff(created.id, read.outs, props(lenses)).replaces == ["sql"], (
        "the next update must put the declared SQL back"
    )


def test_delete_is_idempotent(lenses: FakeLenses) -> None:
    provider = fast()
    created = provider.create(props(lenses))
    provider.delete(created.id, created.outs)
    provider.delete(created.id, created.outs)
    assert lenses.processors == {}
    assert [r.path for r in lenses.calls("DELETE")] == [
        f"/api/v1/environments/dev/proxy/api/v1/streams/{created.id}"
    ] * 2


def test_create_retries_conflicts_then_succeeds(lenses: FakeLenses) -> None:
    lenses.conflicts = 2
    created = fast(retries_on_conflict=2).create(props(lenses))
    assert created.id in lenses.processors
    assert len(lenses.calls("POST")) == 3


def test_create_gives_up_after_the_bounded_retries(lenses: FakeLenses) -> None:
    lenses.conflicts = 100
    error = failure(lenses.password, lambda: fast(retries_on_conflict=2).create(props(lenses)))
    assert error.status == 409
    assert "after 3 attempts" in str(error)
    assert len(lenses.calls("POST")) == 3
    assert lenses.processors == {}


def test_a_taken_name_fails_with_what_to_do(lenses: FakeLenses) -> None:
    lenses.add("heart_rate", SQL)
    error = failure(lenses.password, lambda: fast(retries_on_conflict=0).create(props(lenses)))
    assert "'heart_rate' may already exist in environment 'dev'" in str(error)


def test_a_slow_hq_times_out_within_the_timeout(lenses: FakeLenses) -> None:
    lenses.delay = 3.0
    started = time.monotonic()
    error = failure(lenses.password, lambda: fast(timeout=0.3).read("proc-1", props(lenses)))
    assert "timed out" in str(error)
    assert time.monotonic() - started < 1.5


def test_bad_credentials_fail_clearly(lenses: FakeLenses) -> None:
    wrong = props(lenses, password="not-the-Pa55word")
    error = failure(wrong["password"], lambda: fast().create(wrong))
    assert error.status == 401
    assert "refused the login of user 'admin'" in str(error)
    assert "check the username and password" in str(error)
    assert lenses.processors == {}


def test_errors_from_other_calls_do_not_show_the_password(lenses: FakeLenses) -> None:
    error = failure(lenses.password, lambda: fast().create(props(lenses, environment="nope")))
    assert error.status == 404
    assert "environment nope not found" in str(error)


def test_provider_pickles_without_credentials_even_after_use(lenses: FakeLenses) -> None:
    provider = fast(timeout=7.0)
    provider.create(props(lenses))
    pickled = base64.b64decode(serialize_provider(provider))
    assert lenses.password.encode() not in pickled
    restored = dill.loads(pickled)  # noqa: S301 - bytes this test just made
    assert (restored.timeout, restored.retries_on_conflict, restored.backoff) == (7.0, 2, 0.01)


def test_every_derived_stream_has_its_sql_file() -> None:
    for stream in DERIVED_STREAMS:
        assert f"INTO {stream.topic}" in read_sql(
            Path(__file__).resolve().parent.parent / "sql" / "processors", stream
        ), stream.name


def test_a_missing_sql_file_names_the_path(tmp_path: Path) -> None:
    stream = DERIVED_STREAMS[0]
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / stream.name}.sql does not exist")):
        read_sql(tmp_path, stream)
