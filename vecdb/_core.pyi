# The native core (csrc/bindings/, pybind11) declares no Python types yet:
# every name is Any to type checkers. The checked wrappers in vecdb/native/
# give its callers typed signatures.
from typing import Any

def __getattr__(name: str) -> Any: ...
