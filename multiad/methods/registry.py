"""Where the package finds its methods: no file lists them.

A method registers itself when its class is defined (a subclass of
:class:`multiad.methods.contract.Method` that names itself), and the registry finds the
classes in two places, once, on first use:

- every folder of ``multiad/methods/`` with a ``method.py`` (the package's own methods);
- the Python entry-point group ``multiad.methods`` (a researcher's own installed package:
  ``[project.entry-points."multiad.methods"] NAME = "their_package.method:TheirMethod"``).

This module imports nothing of the package: the configuration reads the methods' sections
through it, and the methods' own modules import the configuration.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

ENTRY_POINT_GROUP = "multiad.methods"


class MethodInfo(Protocol):
    """What the configuration needs of a method (the contract's class attributes)."""

    name: str
    title: str
    kind: str
    backbone: str
    schedule: dict[str, Any]
    Config: type
    order: float

    @property
    def trained(self) -> bool: ...


_methods: dict[str, Any] = {}
_found = False


def register(method: Any) -> None:
    """Record ``method`` under its name (called by ``Method.__init_subclass__``). A second
    method of the same name from another module is refused; the same class defined again
    (a module reloaded) replaces the first."""
    old = _methods.get(method.name)
    where = (type(method).__module__, type(method).__qualname__)
    if old is not None and (type(old).__module__, type(old).__qualname__) != where:
        raise ValueError(f"method name {method.name!r} is taken by "
                         f"{type(old).__module__}.{type(old).__qualname__}; "
                         f"{type(method).__module__}.{type(method).__qualname__} needs another")
    _methods[method.name] = method


def _discover() -> None:
    global _found
    if _found:
        return
    _found = True
    here = Path(__file__).resolve().parent
    for info in pkgutil.iter_modules([str(here)]):
        if info.ispkg and (here / info.name / "method.py").is_file():
            importlib.import_module(f"{__package__}.{info.name}.method")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()  # defining the class registers it
        except Exception as exc:  # a broken plugin must not take the package down
            warnings.warn(f"method plugin {ep.name!r} ({ep.value}, entry point group "
                          f"{ENTRY_POINT_GROUP!r}) could not be loaded and is left out: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)


def all_methods() -> dict[str, Any]:
    """Every method by name: the package's own in their ``order``, then the plugins'."""
    _discover()
    return dict(sorted(_methods.items(), key=lambda kv: (kv[1].order, kv[0])))


def get_method(name: str) -> Any:
    """The method called ``name`` (``--method NAME``)."""
    methods = all_methods()
    if name not in methods:
        raise ValueError(f"method {name!r} unknown; use one of {', '.join(methods)} (a "
                         f"method of your own joins through the entry-point group "
                         f"{ENTRY_POINT_GROUP!r}; see the book's 'Add your method' page)")
    return methods[name]


class _Methods(Mapping[str, Any]):
    """``METHODS``: every method by name, found on first use."""

    def __getitem__(self, name: str) -> Any:
        return all_methods()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(all_methods())

    def __len__(self) -> int:
        return len(all_methods())


METHODS: Mapping[str, Any] = _Methods()
