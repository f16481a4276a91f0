"""The public API is explicit: ``__all__`` lists exactly the public names of each package."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

import eventstore
from eventstore import errors


@pytest.mark.parametrize(
    "package", ["eventstore", "eventstore.blobs", "eventstore.encryption", "projections"]
)
def test_all_matches_public_names(package: str) -> None:
    module = importlib.import_module(package)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(module.__all__) == public
    for name in module.__all__:
        assert hasattr(module, name), name


def test_design_names_exist() -> None:
    for name in (
        "open",
        "Resource",
        "Version",
        "NO_STREAM",
        "ANY",
        "EventStoreError",
        "ConcurrencyError",
        "StreamNotFound",
        "VersionNotFound",
        "ItemTooLarge",
        "InvalidKey",
        "CorruptRecord",
    ):
        assert name in eventstore.__all__


def test_every_error_is_in_the_tree_and_exported() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    ]
    for cls in classes:
        assert issubclass(cls, eventstore.EventStoreError)
        assert cls.__name__ in eventstore.__all__, cls.__name__


def test_bad_input_errors_are_builtin_errors_too() -> None:
    assert issubclass(eventstore.ItemTooLarge, ValueError)
    assert issubclass(eventstore.InvalidKey, ValueError)
    assert issubclass(eventstore.InvalidInput, ValueError)
    assert issubclass(eventstore.WrongType, TypeError)
    assert issubclass(eventstore.BackendUnavailable, ConnectionError)
    assert issubclass(eventstore.BackendTimeout, TimeoutError)


def test_small_things_a_new_user_meets(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Usage errors are typed and say what is wrong; a second store on a backend does not close
    it for the first; the version is known."""
    import eventstore as es
    from eventstore import InvalidInput
    from eventstore.cli import main

    assert es.__version__ and es.__version__ != "0+unknown"
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"eventstore {es.__version__}"
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(es.BackendUnavailable, match=r"no/such/dir/x\.db"):
        es.open(f"sqlite:///{missing}")
    with pytest.raises(InvalidInput):
        es.open("memory://?synchronous=full")
    with pytest.raises(InvalidInput):
        es.open("dynamodb://tbl?region=us-east-1&endpoint_url=not-a-url")
    first = es.open("memory://")
    second = es.EventStore(first.backend)
    second.close()
    assert first.last_position() == 0  # still open
    first.close()


def test_missing_aws_credentials_get_their_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials anywhere: a typed error with the hint, before any request is sent."""
    import eventstore as es
    from tests.models import Order

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = es.open("dynamodb://tbl?region=us-east-1&endpoint_url=http://127.0.0.1:9")
    with pytest.raises(es.CredentialsMissing, match="AWS_ACCESS_KEY_ID"):
        store.read_version(Order, "x")
    assert issubclass(es.CredentialsMissing, es.BackendError)
