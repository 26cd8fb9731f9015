"""``vecdb check PATH``: verify a whole database and say what is damaged."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vecdb.errors import VecdbError
from vecdb.integrity import CheckReport, check_database
from vecdb.progress import ProgressBars, Task

# Exit statuses (as fsck and SQLite's integrity tools do, damage is not a usage error).
CLEAN, DAMAGED, CANNOT_CHECK = 0, 1, 2


@click.command(short_help="Verify every page, value and structure of a database; list what is damaged.")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def check(path: Path, as_json: bool, quiet: bool) -> None:
    """Check the database at PATH and report any damage.

    Reads everything, in one read transaction (safe beside a writer, and
    without changing anything):

    \b
    - pages: LMDB's meta pages, the file size, every page of every tree,
      overflow pages and the free list (each page used or free exactly once);
    - values: the checksum of every stored vector, payload, id entry,
      payload-index entry, change-log entry, setting and PQ model;
    - agreement: ids <-> labels maps, a vector per point, payloads only for
      points, payload indexes against the payloads, the change log against
      the settings.

    Damaged points are listed by collection and id. Index snapshots are
    caches rebuilt from LMDB and are not checked.

    \b
    Exit status: 0 nothing damaged, 1 damage found, 2 could not check
    (no database at PATH).

    \b
    What to do about damage: restore the database from a backup
    (vecdb restore ARCHIVE PATH --force). A damaged payload index alone is
    rebuilt by dropping and creating it again.

    \b
    Examples:
      vecdb check ./data
      vecdb check ./data --json > report.json
    """
    bars = ProgressBars(show=False if quiet else None, delay=0, leave=False)

    def progress(stage: str, done: int, total: int) -> None:
        bars(Task(f"checking {stage}", "pages" if stage == "pages" else "records"), done, total)

    try:
        report = check_database(path, progress)
    except (VecdbError, OSError) as exc:
        click.echo(f"Error: cannot check {path}: {exc}", err=True)
        click.get_current_context().exit(CANNOT_CHECK)
    finally:
        bars.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        click.echo(_describe(report))
    click.get_current_context().exit(CLEAN if report.ok else DAMAGED)


def _describe(report: CheckReport) -> str:
    lines = [f"{report.path}: {report.file_bytes / 2**20:,.1f} MiB, {report.pages_checked:,} pages checked"
             + (f", storage format {report.storage_format}" if report.storage_format else "")
             + (f", database id {report.database_id}" if report.database_id else "")]
    file_problems = [problem.text for problem in report.problems if problem.where == "file"]
    lines += [f"  file: {text}" for text in file_problems]
    for collection in report.collections:
        problems = [p.text for p in report.problems if p.where == collection.name]
        status = "ok" if not problems else f"{len(collection.damaged)} damaged point(s), {len(problems)} problem(s)"
        lines.append(f"  collection {collection.name!r}: {collection.points:,} points, "
                     f"{collection.values_checked:,} values checked: {status}")
        lines += [f"    {text}" for text in problems[:50]]
        if len(problems) > 50:
            lines.append(f"    ... and {len(problems) - 50} more (--json lists all)")
    named = {collection.name for collection in report.collections}
    lines += [f"  collection {p.where!r}: {p.text}" for p in report.problems if p.where not in named | {"file"}]
    lines += [f"  note: {note}" for note in report.notes]
    lines.append(_verdict(report))
    return "\n".join(lines)


def _verdict(report: CheckReport) -> str:
    if report.ok:
        return "no damage found"
    points = sum(len(collection.damaged) for collection in report.collections)
    return (f"DAMAGE FOUND: {len(report.problems)} problem(s)"
            + (f", {points} damaged point(s)" if points else "")
            + "; restore the database from a backup (vecdb restore ARCHIVE PATH --force)")
