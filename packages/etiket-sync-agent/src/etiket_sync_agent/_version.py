"""Version numbers of the core package and of the plugin API."""

from __future__ import annotations

__all__ = ["PLUGIN_API_VERSION", "__version__"]

__version__ = "0.4.0.dev0"

#: Version of the backend/converter contract. The major number changes when a backend written for an
#: older contract could break; a backend declares the majors it supports in ``plugin_api``.
PLUGIN_API_VERSION = "1.0"
