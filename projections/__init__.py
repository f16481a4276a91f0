"""projections: secondary access patterns over the current state of resources.

Declare a :class:`Projection`, open the store with it, query it (``store.query`` or
:func:`query`), :func:`rebuild` it after adding or changing it, and :func:`run` your own
projectors over the change feed. This package builds on ``eventstore``; the store never imports it.
"""

from eventstore.querying import QueryPage
from eventstore.reading import ReplayPage
from projections.cursor import InvalidCursor
from projections.projection import Projection
from projections.query import list_all, query, query_all
from projections.rebuild import RebuildReport, rebuild
from projections.replay import (
    Projector,
    RunReport,
    WritingProjector,
    load_checkpoint,
    reset_checkpoint,
    run,
    save_checkpoint,
)

__all__ = [
    "InvalidCursor",
    "Projection",
    "Projector",
    "QueryPage",
    "RebuildReport",
    "ReplayPage",
    "RunReport",
    "WritingProjector",
    "list_all",
    "load_checkpoint",
    "query",
    "query_all",
    "rebuild",
    "reset_checkpoint",
    "run",
    "save_checkpoint",
]
