"""Exceptions raised by vecdb.

Every error vecdb raises derives from :class:`VecdbError` and carries the
HTTP status a server returns for it. Input errors also derive from the
built-in ``ValueError`` / ``TypeError``, so ``except ValueError`` keeps
working for callers who expect the numpy/scikit-learn convention.
"""

from __future__ import annotations

from typing import Any, List, Optional


class VecdbError(Exception):
    """Base class of all vecdb errors."""

    http_status: int = 500


class InvalidArgumentError(VecdbError, ValueError):
    """An argument has a valid type but an unusable value (k <= 0, NaN, bad id...)."""

    http_status = 400


class DimensionMismatchError(InvalidArgumentError):
    """A vector's dimension differs from the index's, or an array has the wrong ndim."""


class InvalidDTypeError(VecdbError, TypeError):
    """An array or argument has a type that cannot be used or safely converted."""

    http_status = 400


class CorruptIndexError(InvalidArgumentError):
    """Saved index data is truncated, corrupted or of an unknown format version."""


class CorruptBackupError(InvalidArgumentError):
    """A backup archive is truncated, damaged, of an unknown format version,
    or holds something a vecdb backup never does (links, other paths)."""


class CorruptDatabaseError(VecdbError):
    """The database's stored data is damaged: its LMDB file (cut short, a
    damaged page) or a stored value whose checksum fails. vecdb refuses to
    answer from damaged data; restore the database from a backup
    (``vecdb restore``). ``vecdb check PATH`` lists everything damaged.

    HTTP 500: the request was valid (not a 4xx) and the fault lies in the
    server's storage; it is not transient either (503 would invite retries
    that cannot succeed). The class name tells it apart from a bug.
    """

    http_status = 500


class CorruptRecordError(CorruptDatabaseError):
    """A stored record fails its checksum: a point's vector, payload or id
    entries, a collection's settings or change log. ``collection`` and
    ``point_id`` name it where known (the id itself may be what is damaged)."""

    def __init__(self, message: str, *, collection: Optional[str] = None, point_id: Any = None) -> None:
        super().__init__(message)
        self.collection = collection
        self.point_id = point_id


class BackupExistsError(InvalidArgumentError):
    """A backup archive of that name already exists (archives are never
    overwritten)."""

    http_status = 409


class NotFoundError(VecdbError, KeyError):
    """An id (or another named thing) is not there."""

    http_status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidFilterError(InvalidArgumentError):
    """A payload filter is malformed: an unknown operator, an operand of the
    wrong type, a bad field path."""


class InvalidPayloadError(InvalidArgumentError):
    """A payload cannot be stored: not a dict with string keys, not encodable
    as msgpack, or a value that does not fit the field's payload index."""


class DuplicateIdError(InvalidArgumentError):
    """The same id appears twice in one batch."""


class CollectionNotFoundError(NotFoundError):
    """No collection of that name exists in the database."""


class CollectionExistsError(VecdbError):
    """A collection of that name already exists."""

    http_status = 409


class StorageLockedError(VecdbError):
    """Another process (or another handle in this one) holds the database
    folder open for writing."""

    http_status = 409


class ReadOnlyError(VecdbError):
    """A write was attempted through a database opened with ``read_only=True``."""

    http_status = 405


class ClosedError(VecdbError):
    """The database was closed, or this handle was carried across ``fork()``."""

    http_status = 409


class RequestTooLargeError(InvalidArgumentError):
    """A request to the server exceeds one of its limits (body size, batch
    size, payload size)."""

    http_status = 413


class ShardUnavailableError(VecdbError):
    """A shard of a cluster database (:mod:`vecdb.cluster`) did not answer:
    its actor died or is restarting. ``shard`` names it; for a write,
    ``ids`` are the ids sent to it whose outcome is unknown (upserting them
    again is safe: upserts are idempotent)."""

    http_status = 503

    def __init__(self, message: str, *, shard: Optional[int] = None, ids: Optional[List[Any]] = None) -> None:
        super().__init__(message)
        self.shard = shard
        self.ids = list(ids) if ids is not None else []

    def __reduce__(self) -> Any:  # keyword-only fields survive pickling (Ray, multiprocessing)
        return _rebuild_shard_error, (str(self), self.shard, self.ids)


def _rebuild_shard_error(message: str, shard: Optional[int], ids: List[Any]) -> "ShardUnavailableError":
    return ShardUnavailableError(message, shard=shard, ids=ids)


class WriterUnavailableError(VecdbError):
    """A ``vecdb serve --workers N`` process could not pass a write on to
    the server's writer process (it is starting, restarting or shutting
    down). Nothing was written; retrying is safe."""

    http_status = 503


class AuthenticationError(VecdbError):
    """The server needs an API key and the request had none, or a wrong one."""

    http_status = 401


class PermissionDeniedError(VecdbError):
    """The API key is valid but may not do this (a read-only key writing)."""

    http_status = 403


class ServerError(VecdbError):
    """The server failed on a valid request (a bug: please report it), or
    could not be reached."""

    http_status = 500


def error_class(name: str, status: int) -> type:
    """The vecdb error class called ``name`` (what a server's error body
    names), or the closest class for the HTTP ``status``."""
    found = globals().get(name)
    if isinstance(found, type) and issubclass(found, VecdbError):
        return found
    by_status = {400: InvalidArgumentError, 401: AuthenticationError, 403: PermissionDeniedError,
                 404: NotFoundError, 405: ReadOnlyError, 409: CollectionExistsError, 413: RequestTooLargeError,
                 422: InvalidArgumentError}
    return by_status.get(status, ServerError if status >= 500 else InvalidArgumentError)
