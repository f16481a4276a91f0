"""eventsourcing's own recorder test cases, run unmodified on eventstore's persistence module, on
memory, SQLite and DynamoDB Local: subclass, implement ``create_recorder``, nothing else."""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Any, ClassVar

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    TrackingRecorder,
)

# Imported as modules: pytest would otherwise collect their base classes here too.
from eventsourcing.tests import application as es_application
from eventsourcing.tests import persistence as es_persistence
from eventsourcing.utils import Environment

from eventstore.integrations import eventsourcing as module
from tests.conftest import DYNAMODB_ENDPOINT, dynamodb_url, new_table_name

MODULE = "eventstore.integrations.eventsourcing"


def _url(backend: str) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='es-')}/store.db"
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    return dynamodb_url(new_table_name())


class _OnBackend:
    """Each test gets a fresh table on its backend; create_recorder uses the factory."""

    backend: ClassVar[str] = "memory"
    factories: list[Any]

    def _factory(self) -> module.Factory:
        env = Environment(
            name=f"app{uuid.uuid4().hex[:6]}", env={"EVENTSTORE_URL": _url(self.backend)}
        )
        factory = module.Factory(env)
        if not hasattr(self, "factories"):
            self.factories = []
        self.factories.append(factory)
        return factory

    def tearDown(self) -> None:
        for factory in getattr(self, "factories", []):
            delete = getattr(factory.backend, "delete_table", None)
            if delete is not None:
                delete()
            factory.close()
        super().tearDown()  # type: ignore[misc]


def _suites(backend: str) -> dict[str, type]:
    class Aggregate(_OnBackend, es_persistence.AggregateRecorderTestCase):
        def create_recorder(self) -> AggregateRecorder:
            return self._factory().aggregate_recorder()

    class Application(_OnBackend, es_persistence.ApplicationRecorderTestCase[ApplicationRecorder]):
        def create_recorder(self) -> ApplicationRecorder:
            return self._factory().application_recorder()

        def test_insert_subscribe(self) -> None:
            self.optional_test_insert_subscribe()

    class Tracking(_OnBackend, es_persistence.TrackingRecorderTestCase):
        def create_recorder(self) -> TrackingRecorder:
            return self._factory().tracking_recorder()

    class Process(_OnBackend, es_persistence.ProcessRecorderTestCase):
        def create_recorder(self) -> ProcessRecorder:
            return self._factory().process_recorder()

    class NonInterleaving(_OnBackend, es_persistence.NonInterleavingNotificationIDsBaseCase):
        def create_recorder(self) -> ApplicationRecorder:
            return self._factory().application_recorder()

    suites = {
        "Aggregate": Aggregate,
        "Application": Application,
        "Tracking": Tracking,
        "Process": Process,
        "NonInterleaving": NonInterleaving,
    }
    for name, cls in suites.items():
        cls.backend = backend
        cls.__name__ = cls.__qualname__ = f"Test{name}{backend.capitalize()}"
    return suites


for _backend in ("memory", "sqlite", "dynamodb"):
    for _suite in _suites(_backend).values():
        globals()[_suite.__name__] = _suite
del _suite


class CustomTrackingRecorder(module.EventstoreTrackingRecorder):
    """A subclass the factory must construct when asked for it (by class or by topic)."""


class _FactoryOn(es_persistence.InfrastructureFactoryTestCase[module.Factory]):
    __test__ = False  # the base; the Test* subclasses below run it
    backend: ClassVar[str] = "memory"

    def expected_factory_class(self) -> type[module.Factory]:
        return module.Factory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return module.EventstoreAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return module.EventstoreApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return module.EventstoreTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return module.EventstoreProcessRecorder

    def setUp(self) -> None:
        self.env = Environment("TestCase")
        self.env[InfrastructureFactory.PERSISTENCE_MODULE] = MODULE
        self.env["EVENTSTORE_URL"] = _url(self.backend)
        super().setUp()


class TestFactoryMemory(_FactoryOn):
    __test__ = True
    backend = "memory"


class TestFactorySqlite(_FactoryOn):
    __test__ = True
    backend = "sqlite"


class TestFactoryDynamodb(_FactoryOn):
    __test__ = True
    backend = "dynamodb"


class _ExampleOn(es_application.ExampleApplicationTestCase):
    __test__ = False  # the base; the Test* subclasses below run it
    expected_factory_topic = f"{MODULE}:Factory"
    backend: ClassVar[str] = "memory"

    def setUp(self) -> None:
        super().setUp()
        os.environ["PERSISTENCE_MODULE"] = MODULE
        os.environ["EVENTSTORE_URL"] = _url(self.backend)

    def tearDown(self) -> None:
        os.environ.pop("PERSISTENCE_MODULE", None)
        os.environ.pop("EVENTSTORE_URL", None)
        super().tearDown()


class TestExampleMemory(_ExampleOn):
    __test__ = True
    backend = "memory"


class TestExampleSqlite(_ExampleOn):
    __test__ = True
    backend = "sqlite"


class TestExampleDynamodb(_ExampleOn):
    __test__ = True
    backend = "dynamodb"
