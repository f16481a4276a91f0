"""The guided tour behind ``eventstore demo``: a small shop on an embedded SQLite file (and, when
given one, on DynamoDB). It uses both packages, ``eventstore`` and ``projections``, so it sits
above them and is found by the ``eventstore`` command through an entry point."""
