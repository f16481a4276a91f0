"""eventstore: versioned, event-sourced resources in one DynamoDB table, or one SQLite file."""

from eventstore.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ConcurrencyError,
    ContentionError,
    CorruptRecord,
    DuplicateResourceType,
    EventStoreError,
    InvalidCursor,
    InvalidInput,
    InvalidKey,
    InvalidState,
    ItemTooLarge,
    ProjectionError,
    StreamNotFound,
    TableNotFound,
    VersionNotFound,
    WrongType,
)
from eventstore.resource import Resource, Version
from eventstore.store import ANY, NO_STREAM, EventStore
from eventstore.urls import open_store as open

__all__ = [
    "ANY",
    "NO_STREAM",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "ConcurrencyError",
    "ContentionError",
    "CorruptRecord",
    "DuplicateResourceType",
    "EventStore",
    "EventStoreError",
    "InvalidCursor",
    "InvalidInput",
    "InvalidKey",
    "InvalidState",
    "ItemTooLarge",
    "ProjectionError",
    "Resource",
    "StreamNotFound",
    "TableNotFound",
    "Version",
    "VersionNotFound",
    "WrongType",
    "open",
]
