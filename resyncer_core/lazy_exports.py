"""Lazy package exports: a package names what it offers without importing its submodules, so
importing the package stays cheap and loads no network until a name is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """Returns the module-level `__getattr__` and `__dir__` for `package`, resolving each name
    of `exports` ({name: relative submodule}) from its submodule on first access."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(exports[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
