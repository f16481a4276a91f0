"""Backends: the DynamoDB-shaped contract (``base``) and its implementations."""

from eventstore.backends.base import Backend

__all__ = ["Backend"]
