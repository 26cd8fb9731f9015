"""Normalizing user input into the exact arrays the native core accepts.

The native core refuses anything but C-contiguous arrays of its own dtypes
(and checks NaN/inf itself, in one pass without temporaries); this module
converts what can be converted safely and raises a vecdb.errors exception
naming the problem for the rest.
"""

from __future__ import annotations

import weakref
from typing import Any, Dict, Optional, Tuple

import numpy as np

from vecdb import _core
from vecdb.checks import positive_int
from vecdb.errors import DimensionMismatchError, InvalidArgumentError, InvalidDTypeError

DTYPES = ("float32", "float16", "int8")
_NATIVE_DTYPES = {name: np.dtype(name).newbyteorder("=") for name in DTYPES}
_FLOAT16_MAX = float(np.finfo(np.float16).max)
# Asking the OS costs ~10 us, which small searches would pay on every call.
HARDWARE_THREADS = _core.hardware_threads()


def parse_dtype(dtype: Any) -> str:
    """Return the canonical storage dtype name for ``dtype``."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise InvalidArgumentError(f"unsupported dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return name


def as_data_matrix(data: Any) -> np.ndarray:
    """A caller's ``(n, d)`` matrix to search: float16 and int8 kept as they
    are, other numeric types as float32; no copy when already usable."""
    array = _as_numeric_array(data, "data")
    dtype = array.dtype.name if array.dtype.name in ("float16", "int8") else "float32"
    matrix, single = as_matrix(array, dtype, None, "data")
    if single:
        raise DimensionMismatchError("data must be a 2-D array of vectors, got a 1-D array")
    return matrix


def query_dtype(data_dtype: str) -> str:
    """Queries are int8 against int8 vectors and float32 otherwise."""
    return "int8" if data_dtype == "int8" else "float32"


def as_matrix(values: Any, dtype: str, dim: Optional[int], what: str) -> Tuple[np.ndarray, bool]:
    """Convert ``values`` to a C-contiguous 2-D array of ``dtype``.

    Returns the array and whether the input was a single 1-D vector. No copy
    is made when the input already has the right dtype and layout.
    """
    # Fast path for the common case (a search costs ~100 us; this saves ~2).
    if (type(values) is np.ndarray and values.dtype == _NATIVE_DTYPES[dtype] and values.flags.c_contiguous
            and 1 <= values.ndim <= 2 and values.shape[-1] and (dim is None or values.shape[-1] == dim)):
        return (values[np.newaxis, :], True) if values.ndim == 1 else (values, False)
    array = _as_numeric_array(values, what)
    single = array.ndim == 1
    if single:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise DimensionMismatchError(f"{what} must be a 1-D vector or a 2-D array, got {array.ndim}-D")
    if dim is not None and array.shape[1] != dim:
        raise DimensionMismatchError(f"{what} have dimension {array.shape[1]}, expected {dim}")
    if array.shape[1] == 0:
        raise DimensionMismatchError(f"{what} have dimension 0")
    return _convert(array, dtype, what), single


def _as_numeric_array(values: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise InvalidDTypeError(f"{what} must be a numeric array: {exc}") from None
    if array.dtype.kind not in "fiu":
        raise InvalidDTypeError(f"{what} must be a numeric array, got dtype {array.dtype}")
    return array


def _convert(array: np.ndarray, dtype: str, what: str) -> np.ndarray:
    if dtype == "int8":
        return _to_int8(array, what)
    if dtype == "float16" and array.dtype != np.float16:
        _check_float16_range(array, what)
    return np.ascontiguousarray(array, dtype=_NATIVE_DTYPES[dtype])


def _to_int8(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind not in "iu":
        raise InvalidDTypeError(f"{what} must be integers for an int8 index, got {array.dtype}; quantize first")
    if array.dtype != np.int8 and array.size and (array.min() < -128 or array.max() > 127):
        raise InvalidArgumentError(f"{what} have values outside the int8 range [-128, 127]")
    return np.ascontiguousarray(array, dtype=np.int8)


def _check_float16_range(array: np.ndarray, what: str) -> None:
    if array.size == 0 or (array.dtype.kind in "iu" and array.dtype.itemsize == 1):
        return
    with np.errstate(invalid="ignore"):
        too_big = np.isfinite(array) & (np.abs(array) > _FLOAT16_MAX)
    if too_big.any():
        row = int(np.argwhere(too_big.any(axis=1))[0, 0])
        raise InvalidArgumentError(f"row {row} of {what} has values outside the float16 range (+-65504)")


def check_threads(threads: Optional[int]) -> int:
    """Validate a thread count; ``None`` means every hardware thread."""
    if threads is None:
        return HARDWARE_THREADS
    return positive_int(threads, "threads")


def allowed_bitset(allowed: Any, n: int) -> Optional[np.ndarray]:
    """Pack an allowed-id filter into the uint64 bitset the core reads.

    ``allowed`` is ``None`` (everything), a boolean mask of length ``n``, or
    an array of integer ids in ``[0, n)``.
    """
    if allowed is None:
        return None
    array = _filter_array(allowed)
    mask = np.zeros(n, dtype=bool)
    if array.dtype == np.bool_:
        if array.shape[0] != n:
            raise InvalidArgumentError(f"allowed mask has length {array.shape[0]}, expected {n}")
        mask[:] = array
    else:
        ids = array.astype(np.int64, copy=False)
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            bad = int(ids[(ids < 0) | (ids >= n)][0])
            raise InvalidArgumentError(f"allowed id {bad} is out of range [0, {n})")
        mask[ids] = True
    return _pack(mask)


# Bits of an id filter packed through a boolean mask of every id below the
# bound (fast); past this many, only the allowed ids' words are set.
_DENSE_FILTER_BITS = 1 << 26
# An id filter's bits at most (2 GiB): ids beyond need another kind of filter.
MAX_FILTER_BITS = 1 << 34


def id_filter_bitset(allowed: Any, id_bound: int, *, covering: bool = True) -> Optional[np.ndarray]:
    """Pack a filter over caller-chosen ids (an index's ``id_bound`` bounds them).

    ``allowed`` is ``None``, a boolean mask indexed by id (ids beyond its end
    are not allowed), or an array of ids (ids not in the index are ignored).
    The bits cover every id below ``id_bound``, or, if not ``covering`` (for
    a graph, which allows no id past the bits), only up to the largest
    allowed id: an index holding a few very large ids (hashes) is searched
    with a small filter when the allowed ids are small.
    """
    if allowed is None:
        return None
    array = _filter_array(allowed)
    if array.dtype == np.bool_:
        return _pack_mask(array, id_bound)
    ids = array.astype(np.int64, copy=False)
    if ids.size and ids.min() < 0:
        raise InvalidArgumentError(f"allowed ids must be >= 0, got {int(ids.min())}")
    ids = ids[ids < id_bound]
    bits = id_bound if covering else (int(ids.max()) + 1 if ids.size else 0)
    if bits > MAX_FILTER_BITS:
        raise InvalidArgumentError(
            f"allowed ids reach {bits - 1:,}: a filter is a bitset over ids, at most {MAX_FILTER_BITS:,} bits "
            "(2 GiB); give ids below that (renumber very large ids, such as hashes, before adding them)")
    if bits <= _DENSE_FILTER_BITS:
        mask = np.zeros(bits, dtype=bool)
        mask[ids] = True
        return _pack(mask)
    words = np.zeros((bits + 63) // 64, dtype=np.uint64)
    np.bitwise_or.at(words, ids >> 6, np.left_shift(np.uint64(1), (ids & 63).astype(np.uint64)))
    return words


def _filter_array(allowed: Any) -> np.ndarray:
    array = np.asarray(allowed)
    if array.ndim != 1:
        raise InvalidArgumentError(f"allowed must be 1-D (a boolean mask or a list of ids), got {array.ndim}-D")
    if array.dtype != np.bool_ and array.dtype.kind not in "iu" and array.size:
        raise InvalidDTypeError(f"allowed must be a boolean mask or integer ids, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise InvalidArgumentError("allowed ids must be below 2^63")
    return array if array.size or array.dtype == np.bool_ else array.astype(np.int64)


# Masks declared never to change (freeze_mask), by id(mask): (id_bound, their
# bits packed for that bound; -1 and None before the first search). A
# collection's cached filter masks are searched with again and again, and
# packing 50k labels costs ~10 us a search. Array flags cannot tell a mask
# that will not change (a read-only array may be made writable again, or
# written through a view taken earlier), so only declared masks are kept.
# An entry goes when its mask is collected.
_frozen_masks: Dict[int, Tuple[int, Any]] = {}


def freeze_mask(mask: np.ndarray) -> None:
    """Declare ``mask`` (a boolean mask by id that its owner will never
    change again) read-only and worth packing once: later searches with it
    reuse its packed bits."""
    mask.flags.writeable = False
    key = id(mask)
    _frozen_masks[key] = (-1, None)
    weakref.finalize(mask, _frozen_masks.pop, key, None)


def _pack_mask(mask: np.ndarray, id_bound: int) -> np.ndarray:
    known = _frozen_masks.get(id(mask))
    if known is None:
        return _pack(mask[:id_bound])
    if known[0] == id_bound:
        return known[1]
    words = _pack(mask[:id_bound])
    words.flags.writeable = False
    _frozen_masks[id(mask)] = (id_bound, words)
    return words


def _pack(mask: np.ndarray) -> np.ndarray:
    padded = np.zeros(((mask.shape[0] + 63) // 64) * 64, dtype=bool)
    padded[: mask.shape[0]] = mask
    return np.packbits(padded, bitorder="little").view("<u8").astype(np.uint64)


def as_ids(ids: Any, what: str = "ids") -> np.ndarray:
    """Caller ids (an int, or a 1-D sequence or array of ints) as a
    contiguous int64 array; values are checked by the index."""
    array = np.atleast_1d(np.asarray(ids))
    if array.ndim != 1:
        raise InvalidDTypeError(f"{what} must be an integer or a 1-D array of integers, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise InvalidDTypeError(f"{what} must be integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise InvalidArgumentError(f"{what} must be below 2^63")
    return np.ascontiguousarray(array, dtype=np.int64)


def candidate_ids(candidates: Any, n_queries: int) -> np.ndarray:
    """Re-rank candidates as a contiguous ``(n_queries, r)`` int64 array."""
    try:
        array = np.atleast_2d(np.asarray(candidates))
    except ValueError:
        raise InvalidArgumentError("candidates must be a rectangular (queries, r) array of ids") from None
    if array.dtype.kind not in "iu" and array.size:
        raise InvalidDTypeError(f"candidates must be integer ids, got {array.dtype}")
    if array.ndim != 2:
        raise DimensionMismatchError(f"candidates must be a 2-D (queries, r) array, got {array.ndim}-D")
    if array.shape[0] != n_queries:
        raise DimensionMismatchError(f"got candidates for {array.shape[0]} queries, expected {n_queries}")
    if array.dtype.kind == "u" and array.size and int(array.max()) >= 2**63:
        raise InvalidArgumentError(f"candidate id {int(array.max())} is out of range")
    return np.ascontiguousarray(array, dtype=np.int64)


# np.unique is not used on paths daemon threads run: numpy 2.3+ finds the
# distinct values of an integer array in C++ with the GIL released, and a
# daemon thread ending there at interpreter exit (CPython's pthread_exit on
# taking the GIL back) aborts the whole process ("terminate called without
# an active exception": the forced unwind meets numpy's noexcept frames).
# Sorting is all these need, and is what np.unique did before.

def unique_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-D array, ascending."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def unique_first(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The distinct values of a 1-D array, ascending, and the index of each
    one's first occurrence (``np.unique(values, return_index=True)``)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first], order[first]
