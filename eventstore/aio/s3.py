"""The blob store on aiobotocore: :class:`~eventstore.blobs.S3Blobs`'s requests and error
translation, each request awaited on the event loop instead of blocking a thread."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eventstore import bridge
from eventstore.blobs.s3 import S3Blobs

try:
    from aiobotocore.config import AioConfig

    from eventstore.aio.sessions import shared_session
except ImportError as e:  # pragma: no cover - the extra is part of the dev install
    raise ImportError(
        "eventstore.aio with a blob store needs aiobotocore: pip install 'eventstore[aio]'"
    ) from e


class AsyncS3Blobs(S3Blobs):
    """:class:`~eventstore.blobs.S3Blobs` whose client is aiobotocore's, for the async store
    only (its calls wait through :func:`eventstore.bridge.await_`). ``session`` is an
    aiobotocore session (default: the thread's shared one); the client is made on first use, on the event loop."""

    lazy_client = True

    def _new_client(self) -> Any:
        bridge.refuse_outside()  # before making a coroutine that would then never run
        session = self._session or shared_session()
        creator = session.create_client(
            "s3",
            region_name=self._region,
            endpoint_url=self._endpoint_url,
            config=AioConfig(**self._config()),
        )
        return bridge.await_(creator.__aenter__())

    def _send(self, method: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = bridge.await_(method(**params))
        return response

    def _read(self, body: Any) -> bytes:
        async def read() -> bytes:
            async with body as stream:
                data: bytes = await stream.read()
            return data

        return bridge.await_(read())

    def _close_client(self, client: Any) -> None:
        bridge.await_(client.__aexit__(None, None, None))
