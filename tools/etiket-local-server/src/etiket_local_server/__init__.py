"""A local eTiKeT-compatible server: demo target, test server and self-hosting.

Start it with ``etiket-local-server serve --data-dir D`` or, in-process, with
:func:`etiket_local_server.testing.start_server`. The ASGI app comes from
:func:`etiket_local_server.app.create_app`.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.4.0.dev0"
