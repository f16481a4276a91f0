"""One aiobotocore session per thread and AWS environment, shared by every async client the
library makes (DynamoDB, its streams, S3, a key store): a new session reads botocore's data
files and the credential chain again, 100-150 ms per client measured on DynamoDB Local, which an
async store opened per request or per Lambda invocation paid for each client. Per thread,
because an event loop belongs to one thread and the clients a loop makes interleave only at
its awaits; per AWS environment, as the blocking store's sessions (``backends/aws.py``)."""

from __future__ import annotations

import threading
from typing import Any

from aiobotocore.session import get_session

from eventstore.backends.aws import session_for_environment

_local = threading.local()


def shared_session() -> Any:
    """The calling thread's aiobotocore session for the current AWS environment."""
    sessions: dict[tuple[str | None, ...], Any] | None = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    return session_for_environment(sessions, get_session)
