"""The ``vecdb`` command (also ``python -m vecdb``): one click group, one
module per command (or family of commands)."""

from __future__ import annotations

import click

from vecdb._version import __version__
from vecdb.cli.backup import backup, restore
from vecdb.cli.bench import bench
from vecdb.cli.check import check
from vecdb.cli.info import info
from vecdb.cli.serve import serve
from vecdb.cli.transfer import export_points, import_points


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vecdb")
def main() -> None:
    """vecdb: an embedded vector database with a native SIMD core.

    Each command takes the database folder (what vecdb.open(path) opens)."""


main.add_command(serve)
main.add_command(info)
main.add_command(check)
main.add_command(import_points)
main.add_command(export_points)
main.add_command(backup)
main.add_command(restore)
main.add_command(bench)
