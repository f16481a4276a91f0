"""One boto3 session per process and AWS environment, shared by every client the library makes
(DynamoDB, its streams, S3): making a session reads botocore's data files and the credential
chain again, about 150 ms, which every store opened by a short-lived handler (a Lambda
invocation) paid for each of its clients. A session is kept for the AWS variables of the
environment it was made in, so that a process that changes them gets a session of the new ones.
boto3 sessions are not safe to make clients from in several threads at once, so clients are made
under a lock; the clients themselves are thread-safe."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config

# What the credential and configuration chains read from the environment.
_ENVIRONMENT = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)
S = TypeVar("S")

_lock = threading.Lock()
_sessions: dict[tuple[str | None, ...], boto3.session.Session] = {}


def session_for_environment(sessions: dict[tuple[str | None, ...], S], make: Callable[[], S]) -> S:
    """The session ``sessions`` keeps for the current AWS environment, made by ``make`` if it
    has none. A few environments are kept (a process rarely changes its own more than that);
    the caller makes the access safe (a lock, or one dict per thread)."""
    environment = tuple(os.environ.get(name) for name in _ENVIRONMENT)
    session = sessions.get(environment)
    if session is None:
        if len(sessions) >= 8:
            sessions.clear()
        session = sessions[environment] = make()
    return session


def new_client(
    service: str,
    *,
    region: str | None,
    endpoint_url: str | None,
    config: Config,
    session: Any = None,
) -> Any:
    """A client of ``service`` from ``session`` (default: the process's shared session for the
    current AWS environment)."""
    with _lock:
        if session is None:
            session = session_for_environment(_sessions, boto3.session.Session)
        return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
