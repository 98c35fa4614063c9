"""The file-converter contract and converter discovery."""

from etiket_sync_agent.converters.base import FileConverter, check_converter_class
from etiket_sync_agent.converters.registry import (
    converter_registry,
    converters_for,
    list_converters,
    load_converter,
)

__all__ = [
    "FileConverter",
    "check_converter_class",
    "converter_registry",
    "converters_for",
    "list_converters",
    "load_converter",
]
