"""Every backend keeps the interface of vecdb.api: each class implements
every Protocol member (itself or in a base of its own, never by inheriting
the Protocol's empty body), with the Protocol's parameters (names, kinds,
defaults) and overloads, and nothing public beyond it except the listed
extras. The asynchronous client keeps it too, as coroutines. Backends cannot
drift apart: a parameter added to one and not to the Protocol (and so to the
others) fails here."""

from __future__ import annotations

import inspect
import sys
import typing
from types import FunctionType
from typing import Any, Dict, List, Set, Tuple

import numpy as np
import pytest

import vecdb
from vecdb.api import CollectionAPI, DatabaseAPI
from vecdb.cluster.collection import ClusterCollection
from vecdb.cluster.database import ClusterDatabase

IMPLEMENTATIONS = [(DatabaseAPI, vecdb.Database), (DatabaseAPI, vecdb.RemoteDatabase), (DatabaseAPI, ClusterDatabase),
                   (CollectionAPI, vecdb.Collection), (CollectionAPI, vecdb.NamedVectorsCollection),
                   (CollectionAPI, vecdb.RemoteCollection), (CollectionAPI, ClusterCollection)]

# Public instance attributes a backend may have beyond the Protocol: where
# the database lives and how it was opened, which open() and connect() take
# and no other backend shares.
EXTRAS: Dict[type, Set[str]] = {
    vecdb.Database: {"path", "read_only"},  # the folder, and whether it was opened read-only
    vecdb.RemoteDatabase: {"url"},  # the server's address
    # the catalog's folder, its shard count, and whether searches skip a shard that does not answer
    ClusterDatabase: {"path", "shards", "allow_partial"},
    vecdb.AsyncRemoteDatabase: {"url"},
}

# The asynchronous client: each Protocol method a coroutine with the same
# parameters, with these differences.
ASYNC_IMPLEMENTATIONS = [(DatabaseAPI, vecdb.AsyncRemoteDatabase), (CollectionAPI, vecdb.AsyncRemoteCollection)]
ASYNC_NAMES = {"__enter__": "__aenter__", "__exit__": "__aexit__"}  # `async with`
NOT_ASYNC = {"__len__"}  # len() cannot await: `await col.count()`
READ_FROM_SERVER = {"payload_indexes", "text_indexes"}  # properties that ask the server: coroutines

# What typing.Protocol puts in every Protocol's namespace.
TYPING_OWN = {"__init__", "__subclasshook__"}


def protocol_members(protocol: type) -> Set[str]:
    """The methods and properties a Protocol declares."""
    return {name for name, member in vars(protocol).items()
            if isinstance(member, (property, FunctionType)) and name not in TYPING_OWN}


def _implementing_classes(cls: type) -> List[type]:
    """``cls`` and its bases, less the Protocols (whose members have no body)."""
    return [klass for klass in cls.__mro__ if klass is not object and not getattr(klass, "_is_protocol", False)]


def implementation(cls: type, name: str) -> Any:
    """The member ``name`` as the class implements it (None: it does not)."""
    return next((vars(klass)[name] for klass in _implementing_classes(cls) if name in vars(klass)), None)


def public_members(cls: type) -> Set[str]:
    return {name for klass in _implementing_classes(cls) for name in vars(klass) if not name.startswith("_")}


needs_get_overloads = pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.get_overloads is new in 3.11")


def _id(pair: Tuple[type, type]) -> str:
    return pair[1].__name__


def _parameters(function: Any) -> List[Tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _overloads(function: Any) -> List[inspect.Signature]:
    return [inspect.signature(overload) for overload in typing.get_overloads(function)]


@pytest.mark.parametrize("protocol, cls", IMPLEMENTATIONS, ids=map(_id, IMPLEMENTATIONS))
def test_the_class_implements_every_protocol_member(protocol, cls):
    assert protocol in cls.__mro__  # declared: mypy checks it against the Protocol
    # Not by the Protocol: one only inherited from it has no body.
    assert sorted(name for name in protocol_members(protocol) if implementation(cls, name) is None) == []


@pytest.mark.parametrize("protocol, cls", IMPLEMENTATIONS + ASYNC_IMPLEMENTATIONS,
                         ids=map(_id, IMPLEMENTATIONS + ASYNC_IMPLEMENTATIONS))
def test_nothing_public_on_the_class_is_missing_from_the_protocol(protocol, cls):
    assert sorted(public_members(cls) - protocol_members(protocol)) == []


@pytest.mark.parametrize("protocol, cls", IMPLEMENTATIONS, ids=map(_id, IMPLEMENTATIONS))
def test_methods_take_the_protocols_parameters(protocol, cls):
    for name in sorted(protocol_members(protocol)):
        declared, implemented = vars(protocol)[name], implementation(cls, name)
        if isinstance(declared, property):
            assert isinstance(implemented, property), name
            assert implemented.fset is None, f"{name}: the Protocol's property is read-only"
            continue
        assert _parameters(implemented) == _parameters(declared), name


@needs_get_overloads
@pytest.mark.parametrize("protocol, cls", IMPLEMENTATIONS, ids=map(_id, IMPLEMENTATIONS))
def test_overloads_match_the_protocols(protocol, cls):
    for name in sorted(protocol_members(protocol)):
        if isinstance(vars(protocol)[name], property):
            continue
        # Annotations too: an overload is its annotations.
        assert _overloads(implementation(cls, name)) == _overloads(vars(protocol)[name]), name


@pytest.mark.parametrize("protocol, cls", ASYNC_IMPLEMENTATIONS, ids=map(_id, ASYNC_IMPLEMENTATIONS))
def test_the_async_client_has_every_protocol_method_as_a_coroutine_with_its_parameters(protocol, cls):
    assert protocol not in cls.__mro__  # its methods return coroutines, not the Protocol's results
    for name in sorted(protocol_members(protocol)):
        declared, implemented = vars(protocol)[name], implementation(cls, ASYNC_NAMES.get(name, name))
        if name in NOT_ASYNC:
            assert implemented is None, name
        elif name in READ_FROM_SERVER:
            assert inspect.iscoroutinefunction(implemented), name
            assert _parameters(implemented) == _parameters(declared.fget), name
        elif isinstance(declared, property):
            assert isinstance(implemented, property) and implemented.fset is None, name
        else:
            assert inspect.iscoroutinefunction(implemented), name
            assert _parameters(implemented) == _parameters(declared), name


@needs_get_overloads
@pytest.mark.parametrize("protocol, cls", ASYNC_IMPLEMENTATIONS, ids=map(_id, ASYNC_IMPLEMENTATIONS))
def test_the_async_clients_overloads_match_the_protocols(protocol, cls):
    for name in sorted(protocol_members(protocol) - NOT_ASYNC - READ_FROM_SERVER - set(ASYNC_NAMES)):
        if isinstance(vars(protocol)[name], property):
            continue
        assert _overloads(implementation(cls, name)) == _overloads(vars(protocol)[name]), name


@needs_get_overloads
def test_search_is_overloaded_for_one_query_a_batch_and_text():
    returns = [inspect.signature(f).return_annotation for f in typing.get_overloads(CollectionAPI.search)]
    assert returns == ["List[Hit]", "List[List[Hit]]", "List[Hit]", "Any"]  # the last: hits, lists or groups


def test_every_backend_is_an_instance_and_has_only_the_listed_extras(db):
    docs = db.create_collection("docs", dim=3)
    docs.upsert(["a"], np.ones((1, 3)))
    assert isinstance(db, DatabaseAPI) and isinstance(docs, CollectionAPI)
    for handle, protocol in ((db, DatabaseAPI), (docs, CollectionAPI)):
        attributes = {name for name in vars(handle) if not name.startswith("_")}
        assert attributes - protocol_members(protocol) == EXTRAS.get(type(handle), set()), type(handle)
    assert [hit.id for hit in docs.search([1.0, 1.0, 1.0], k=1)] == ["a"]
    assert [[hit.id for hit in row] for row in docs.search([[1.0, 1.0, 1.0]], k=1)] == [["a"]]
