"""Lazy imports of optional libraries, failing with the pip command that fixes it."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from types import ModuleType


class MissingDependencyError(RuntimeError):
    """An optional library the requested feature needs is not installed."""


@dataclass(frozen=True)
class Requirement:
    """A Python module and the pip package that provides it (they often differ: faiss / faiss-cpu)."""

    module: str
    pip_package: str
    install_command: str | None = None

    def install_hint(self) -> str:
        """The command that installs this requirement."""
        return self.install_command or f"pip install {self.pip_package}"

    def is_installed(self) -> bool:
        """True when the module can be found; for a submodule this imports its parent package."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            # A submodule's parent package is missing.
            return False


def require(requirement: Requirement, needed_for: str) -> ModuleType:
    """Import ``requirement.module`` or raise MissingDependencyError naming the pip package."""
    try:
        return importlib.import_module(requirement.module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{needed_for} needs the Python package '{requirement.pip_package}' "
            f"(import {requirement.module} failed: {error}). "
            f"Install it with: {requirement.install_hint()}"
        ) from error


def missing_requirements(requirements: list[Requirement]) -> list[Requirement]:
    """The requirements whose module is not installed, each listed once, in order."""
    missing: list[Requirement] = []
    for requirement in requirements:
        if not requirement.is_installed() and requirement not in missing:
            missing.append(requirement)
    return missing


def installed_version(requirement: Requirement) -> str | None:
    """The installed version of ``requirement``, or None when it is not installed.

    A package imported from a source tree without being installed has no distribution
    metadata; its module's ``__version__`` is used then.
    """
    try:
        return importlib.metadata.version(requirement.pip_package)
    except importlib.metadata.PackageNotFoundError:
        if not requirement.is_installed():
            return None
        module = importlib.import_module(requirement.module)
        return str(getattr(module, "__version__", "unknown"))


H5PY = Requirement("h5py", "h5py")
MATPLOTLIB = Requirement("matplotlib", "matplotlib")
TQDM = Requirement("tqdm", "tqdm")
# Published as vecdb-engine: "vecdb" on PyPI is an unrelated project.
VECDB = Requirement("vecdb", "vecdb-engine", "pip install -e . (from the repository root)")
NUMPY = Requirement("numpy", "numpy")
FAISS = Requirement("faiss", "faiss-cpu")
HNSWLIB = Requirement("hnswlib", "hnswlib")
USEARCH = Requirement("usearch.index", "usearch")
# The server benchmark's clients and servers.
CHROMADB = Requirement("chromadb", "chromadb")
HTTPX = Requirement("httpx", "httpx")
FASTAPI = Requirement("fastapi", "fastapi")
UVICORN = Requirement("uvicorn", "uvicorn")
MSGPACK = Requirement("msgpack", "msgpack")
SNIFFIO = Requirement("sniffio", "sniffio")
UVLOOP = Requirement("uvloop", "uvloop")
# The cluster benchmark's shards run on Ray.
RAY = Requirement("ray", "ray")
# The durable benchmark's other embedded databases.
QDRANT_CLIENT = Requirement("qdrant_client", "qdrant-client")
LANCEDB = Requirement("lancedb", "lancedb")
