"""Exceptions raised by vecdb.

Every error vecdb raises derives from :class:`VecdbError` and carries the
HTTP status a server returns for it. Input errors also derive from the
built-in ``ValueError`` / ``TypeError``, so ``except ValueError`` keeps
working for callers who expect the numpy/scikit-learn convention.
"""

from __future__ import annotations


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


class NotFoundError(VecdbError, KeyError):
    """An id (or another named thing) is not there."""

    http_status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
