"""``python -m vecdb``: the vecdb command."""

from vecdb.cli import main

main()
