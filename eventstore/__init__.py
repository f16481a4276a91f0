"""eventstore: versioned, event-sourced resources in one DynamoDB table, or one SQLite file."""

from importlib import metadata as _metadata

from eventstore.backends.base import TableOptions
from eventstore.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BucketNotFound,
    CommitTooLarge,
    ConcurrencyError,
    Conflict,
    ContentionError,
    CorruptRecord,
    CredentialsMissing,
    DuplicateResourceType,
    EventStoreError,
    IndexTimeout,
    InvalidCursor,
    InvalidInput,
    InvalidKey,
    InvalidState,
    ItemTooLarge,
    KeysMissing,
    NoBlobStore,
    OutdatedLayout,
    ProjectionError,
    SchemaMismatch,
    Shredded,
    StreamNotFound,
    SubjectChanged,
    TableNotFound,
    VersionNotFound,
    WrongType,
)
from eventstore.querying import QueryPage
from eventstore.reading import ReplayPage
from eventstore.repository import Repository
from eventstore.resource import Resource, Version
from eventstore.store import ANY, NO_STREAM, Append, Checkpoint, EventStore
from eventstore.urls import open_store as open

try:
    __version__ = _metadata.version("eventstore")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ANY",
    "NO_STREAM",
    "Append",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BucketNotFound",
    "Checkpoint",
    "CommitTooLarge",
    "ConcurrencyError",
    "Conflict",
    "ContentionError",
    "CorruptRecord",
    "CredentialsMissing",
    "DuplicateResourceType",
    "EventStore",
    "EventStoreError",
    "IndexTimeout",
    "InvalidCursor",
    "InvalidInput",
    "InvalidKey",
    "InvalidState",
    "ItemTooLarge",
    "KeysMissing",
    "NoBlobStore",
    "OutdatedLayout",
    "ProjectionError",
    "QueryPage",
    "ReplayPage",
    "Repository",
    "Resource",
    "SchemaMismatch",
    "Shredded",
    "StreamNotFound",
    "SubjectChanged",
    "TableNotFound",
    "TableOptions",
    "Version",
    "VersionNotFound",
    "WrongType",
    "open",
]
