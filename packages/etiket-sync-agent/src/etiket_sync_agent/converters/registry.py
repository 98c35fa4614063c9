"""Discovery of file converters in the entry-point group ``etiket_sync_agent.converters``."""

from __future__ import annotations

import importlib
from functools import lru_cache

from etiket_sync_agent.converters.base import FileConverter, check_converter_class
from etiket_sync_agent.errors import BackendNotFoundError, PluginContractError
from etiket_sync_agent.plugins import CONVERTERS_GROUP, PluginInfo, PluginRegistry

__all__ = ["converter_registry", "converters_for", "list_converters", "load_converter"]


@lru_cache(maxsize=1)
def converter_registry() -> PluginRegistry[FileConverter]:
    """The process-wide converter registry (created on first use, never at import)."""
    return PluginRegistry(
        CONVERTERS_GROUP, check_converter_class, "converter", "etiket-sync-agent-converters-"
    )


def load_converter(name: str) -> type[FileConverter]:
    """A converter class by entry-point name, or by ``module:Class`` / ``module.Class``."""
    if ":" in name or ("." in name and name not in converter_registry().names()):
        module_name, _, attr = name.replace(":", ".").rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise BackendNotFoundError(f"cannot import converter {name!r}: {exc}") from exc
        if not isinstance(obj, type):
            raise PluginContractError(f"converter {name!r} is not a class")
        check_converter_class(obj)
        return obj
    return converter_registry().get(name)


def list_converters() -> list[PluginInfo[FileConverter]]:
    """Every installed converter with its load status."""
    return converter_registry().infos()


def converters_for(input_type: str) -> list[tuple[str, type[FileConverter]]]:
    """Usable converters whose ``input_type`` matches (name, class), sorted by name."""
    wanted = input_type.lower().lstrip(".")
    return [
        (info.name, info.cls)
        for info in list_converters()
        if info.usable and info.cls is not None and info.cls.input_type == wanted
    ]
