"""S3 fixes for moto 5.2.5 (monkey patches, applied by ``apply()``).

Conditional writes are atomic on AWS: of two ``PutObject`` calls with ``If-None-Match: *`` (or
the same ``If-Match`` ETag) on one key, exactly one succeeds and the other gets
``412 PreconditionFailed``. moto checks the precondition and then writes, and its server is
threaded, so two concurrent requests can both pass the check. The conditional object writes and
deletes are serialised here so the check and the write are one step, as on AWS.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.s3 import responses as s3_responses

_LOCK = threading.RLock()
_APPLIED = False


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(self: s3_responses.S3Response, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(self, *args, **kwargs)

    return wrapper


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    cls = s3_responses.S3Response
    cls.put_object = _serialised(cls.put_object)
    cls.delete_object = _serialised(cls.delete_object)
    _APPLIED = True
