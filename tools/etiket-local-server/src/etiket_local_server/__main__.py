"""``python -m etiket_local_server`` = the ``etiket-local-server`` command."""

from etiket_local_server.cli import main

if __name__ == "__main__":
    main()
