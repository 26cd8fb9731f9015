"""``vecdb import`` and ``vecdb export``: points between files and a collection."""

from __future__ import annotations

from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import click

from vecdb.collection import Collection
from vecdb.config import HNSW, Flat
from vecdb.database import Database
from vecdb.database import open as open_database
from vecdb.errors import CollectionNotFoundError, DimensionMismatchError, InvalidArgumentError, VecdbError
from vecdb.progress import Progress, ProgressBars, Task, silent, terminal_bars
from vecdb.arrow import arrow_batches, upsert_batch
from vecdb.transfer.exporters import npy_export_paths, write_jsonl, write_npy, write_parquet
from vecdb.transfer.importers import (ARROW_EXTENSIONS, Batch, ParquetPoints, PayloadFile, VectorFile, batches,
                                      open_vector_file)
from vecdb.records import Record

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("import", short_help="Load vectors and payloads from .npy, .fvecs, .hdf5, .jsonl or .parquet files.")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.argument("collection")
@click.argument("source", type=_EXISTING_FILE)
@click.option("--payloads", type=_EXISTING_FILE, metavar="FILE.jsonl",
              help="Payloads: one JSON object per line, line N for vector N.")
@click.option("--id-field", metavar="NAME",
              help="With --payloads: each line's NAME field is the point's id (and leaves the payload).")
@click.option("--payload-field", metavar="NAME",
              help="With --payloads: the payload is each line's NAME field, not the whole line.")
@click.option("--id-column", metavar="NAME", help="A .parquet SOURCE's column of ids.  [default: id]")
@click.option("--vector-column", metavar="NAME",
              help="A .parquet SOURCE's column of vectors (a struct of them for named vectors).  [default: vector]")
@click.option("--start-id", type=int, default=0, show_default=True,
              help="Ids are row numbers plus this, when the files give none.")
@click.option("--dataset", metavar="NAME", help="HDF5 only: the dataset to read.  [default: train]")
@click.option("--metric", type=click.Choice(["cosine", "ip", "l2"]),
              help="For a new collection.  [default: cosine]")
@click.option("--index", "index_kind", type=click.Choice(["hnsw", "flat"]),
              help="For a new collection: HNSW graph or exact (flat) search.  [default: hnsw]")
@click.option("--M", "hnsw_m", type=click.IntRange(min=2), help="For a new HNSW collection: links per node.  [default: 16]")
@click.option("--ef-construction", type=click.IntRange(min=1),
              help="For a new HNSW collection: beam width while inserting.  [default: 200]")
@click.option("--text-field", "text_fields", metavar="NAME", multiple=True,
              help="Index the payloads' NAME field (text) for full-text search, with English stemming and stop "
                   "words (a text index the collection has already is kept as it is). Repeatable.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Points per upsert (each is all-or-nothing) and per read from SOURCE.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def import_points(path: Path, collection: str, source: Path, payloads: Optional[Path], id_field: Optional[str],
                  payload_field: Optional[str], id_column: Optional[str], vector_column: Optional[str], start_id: int, dataset: Optional[str], metric: Optional[str],
                  index_kind: Optional[str], hnsw_m: Optional[int], ef_construction: Optional[int],
                  text_fields: Tuple[str, ...], batch_size: int, quiet: bool) -> None:
    """Upsert the vectors in SOURCE into COLLECTION of the database at PATH
    (both created if missing).

    \b
    SOURCE formats, by extension:
      .npy     a 2-D array of numbers (memory-mapped)
      .fvecs   TEXMEX: per row an int32 dimension, then that many float32
      .hdf5    an ann-benchmarks file: dataset "train" (see --dataset)
      .jsonl   {"id": ..., "vector": [...], "payload": {...}} per line, as
               `vecdb export` writes; "id" and "payload" are optional
      .parquet columns "id", "vector" (fixed-size lists, or lists of
               one length) and one per payload key, as `vecdb export
               --format parquet` writes (see --id-column, --vector-column)

    Ids come from the .jsonl or .parquet source, else from --id-field, else
    they are row numbers plus --start-id; ids read from files must be
    unique.
    SOURCE is read a batch at a time, so files larger than memory import.
    A new collection takes --metric, --index, --M and --ef-construction; an
    existing one must have SOURCE's dimension. --text-field makes text
    indexes before the first batch, so the points are indexed as they come
    (a payload whose field holds something other than text stops the
    import there).

    Bad input (NaN, a wrong dimension, a line that is not a JSON object,
    more or fewer payload lines than vectors) stops the import with the file
    and row (0-based) or line (1-based). Batches before it stay imported;
    running the command again after fixing the input replaces them.

    \b
    Examples:
      vecdb import ./data docs embeddings.npy --payloads meta.jsonl --metric ip
      vecdb import ./data docs meta-and-vectors.jsonl
      vecdb import ./data sift sift_base.fvecs --metric l2 --M 32
      vecdb import ./data glove glove-100-angular.hdf5 --dataset train
      vecdb import ./data docs dump.npy --payloads dump.jsonl --id-field id --payload-field payload
      vecdb import ./data docs docs.jsonl --text-field title --text-field body
      vecdb import ./data docs docs.parquet --id-column doc_id --vector-column embedding
    """
    arrow_source = source.suffix.lower() in ARROW_EXTENSIONS
    if (id_column or vector_column) and not arrow_source:
        raise click.UsageError("--id-column and --vector-column name the columns of a .parquet SOURCE")
    if arrow_source and (payloads or id_field or payload_field or start_id or dataset):
        raise click.UsageError("a .parquet SOURCE carries its own ids and payloads; --payloads, --id-field, "
                               "--payload-field, --start-id and --dataset are for the other formats")
    if (id_field or payload_field) and payloads is None:
        raise click.UsageError("--id-field and --payload-field apply to the --payloads file; give one")
    if payloads is not None and source.suffix.lower() == ".jsonl":
        raise click.UsageError("a .jsonl SOURCE carries its own ids and payloads; --payloads is for the "
                               ".npy, .fvecs and .hdf5 formats")
    if index_kind == "flat" and (hnsw_m or ef_construction):
        raise click.UsageError("--M and --ef-construction set up an HNSW index, not --index flat")
    if text_fields and payloads is None and source.suffix.lower() != ".jsonl" and not arrow_source:
        raise click.UsageError("--text-field indexes the payloads' text; give them with --payloads (or a .jsonl "
                               "SOURCE)")
    if arrow_source:
        _import_parquet(path, collection, source, id_column or "id", vector_column or "vector", metric, index_kind,
                        hnsw_m, ef_construction, text_fields, batch_size, quiet)
        return
    imported = 0
    try:
        with ExitStack() as stack:
            vectors = stack.enter_context(closing(open_vector_file(source, dataset)))
            payload_file = None if payloads is None else \
                stack.enter_context(closing(PayloadFile(payloads, id_field, payload_field)))
            _check_pairing(vectors, payload_file)
            bars = stack.enter_context(closing(_bars(quiet)))
            db = stack.enter_context(open_database(path, progress=_database_progress(quiet)))
            target = _target_collection(db, collection, vectors.dim, vectors.path, metric, index_kind, hnsw_m,
                                        ef_construction)
            for field in text_fields:
                if field not in target.text_indexes:
                    target.create_text_index(field)
            task = Task(f"importing into {collection!r}", "points")
            bars(task, 0, vectors.rows)
            for batch in batches(vectors, payload_file, batch_size, start_id):
                _upsert(target, batch, vectors)
                imported += len(batch.ids)
                bars(task, imported, vectors.rows)
            total = target.count()
    except (VecdbError, OSError) as exc:
        raise click.ClickException(_import_failure(str(exc), imported, batch_size)) from None
    except KeyboardInterrupt:  # the batch being written is rolled back; say what is in
        raise click.ClickException(_import_failure("interrupted", imported, batch_size)) from None
    click.echo(f"imported {imported:,} points from {source} into {collection!r} at {path} (now {total:,} points)")


def _import_parquet(path: Path, collection: str, source: Path, id_column: str, vector_column: str,
                    metric: Optional[str], index_kind: Optional[str], hnsw_m: Optional[int],
                    ef_construction: Optional[int], text_fields: Tuple[str, ...], batch_size: int,
                    quiet: bool) -> None:
    """``vecdb import`` of a Parquet file: its rows read a batch at a time
    and upserted as :meth:`vecdb.api.CollectionAPI.upsert_arrow` does."""
    imported = 0
    try:
        with ExitStack() as stack:
            points = stack.enter_context(closing(ParquetPoints(source, vector_column)))
            bars = stack.enter_context(closing(_bars(quiet)))
            db = stack.enter_context(open_database(path, progress=_database_progress(quiet)))
            target = _target_collection(db, collection, points.dim, source, metric, index_kind, hnsw_m,
                                        ef_construction)
            for field in text_fields:
                if field not in target.text_indexes:
                    target.create_text_index(field)
            task = Task(f"importing into {collection!r}", "points")
            bars(task, 0, points.rows)
            for batch in arrow_batches(target, points.stream(batch_size), id=id_column, vector=vector_column,
                                       batch_size=batch_size):
                upsert_batch(target, batch)
                imported += len(batch.ids)
                bars(task, imported, points.rows)
            total = target.count()
    except (VecdbError, OSError) as exc:
        raise click.ClickException(_import_failure(f"{source}: {exc}", imported, batch_size)) from None
    except KeyboardInterrupt:
        raise click.ClickException(_import_failure("interrupted", imported, batch_size)) from None
    click.echo(f"imported {imported:,} points from {source} into {collection!r} at {path} (now {total:,} points)")


@click.command("export", short_help="Write a collection's points to JSONL, .npy + .jsonl, or Parquet.")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("collection")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(["jsonl", "npy", "parquet"]), default="jsonl",
              show_default=True, help="jsonl: one file with vectors; npy: OUT.npy with the vectors and OUT.jsonl with "
                                      "ids and payloads; parquet: one table (needs pyarrow).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Points read per page.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def export_points(path: Path, collection: str, out: Path, file_format: str, batch_size: int, force: bool,
                  quiet: bool) -> None:
    """Write every point of COLLECTION in the database at PATH to OUT, in
    insertion order.

    \b
    Formats:
      jsonl (default)  {"id": ..., "payload": {...}, "vector": [...]} per line
      npy              OUT.npy: float32 vectors (rows x dimension), and
                       OUT.jsonl: {"id": ..., "payload": {...}} per line,
                       in the same order
      parquet          columns "id", "vector" (fixed-size lists of
                       float32; a struct of them for named vectors) and
                       one per payload key (JSON text where a key's
                       values differ in type); built in memory

    Vectors are written exactly as stored (float32); `vecdb import` reads
    every format back. The collection's settings (metric, index) are not
    exported: `vecdb info` shows them. Opens the database read-only, so it
    runs beside a writer; points written meanwhile may or may not be
    included. Files appear only when complete.

    \b
    Examples:
      vecdb export ./data docs docs.jsonl
      vecdb export ./data docs dump --format npy     # dump.npy + dump.jsonl
      vecdb export ./data docs docs.parquet --format parquet
    """
    outputs = list(npy_export_paths(out)) if file_format == "npy" else [out]
    taken = [output for output in outputs if output.exists()]
    if taken and not force:
        raise click.ClickException(f"{taken[0]} already exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise click.ClickException(f"folder {out.parent} does not exist")
    try:
        with open_database(path, read_only=True, progress=_database_progress(quiet)) as db, \
                closing(_bars(quiet)) as bars:
            source = db.get_collection(collection)
            if not isinstance(source, Collection) and file_format != "parquet":
                raise click.ClickException(f"collection {collection!r} has named vectors; export it with --format "
                                           "parquet")
            pages = _pages(source, batch_size, bars, Task(f"exporting {collection!r}", "points"))
            if file_format == "parquet":
                written = write_parquet(source, pages, out)
            elif file_format == "jsonl":
                written = write_jsonl(pages, out)
            else:
                written = write_npy(pages, outputs[0], outputs[1], dim=source.dim)
    except (VecdbError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"exported {written:,} points of {collection!r} to {' and '.join(map(str, outputs))}")
    reader = f"{outputs[0]}" if file_format != "npy" else \
        f"{outputs[0]} --payloads {outputs[1]} --id-field id --payload-field payload"
    click.echo(f"import them with: vecdb import DB COLLECTION {reader}")


def _check_pairing(vectors: VectorFile, payloads: Optional[PayloadFile]) -> None:
    if payloads is None or payloads.lines == vectors.rows:
        return
    if payloads.lines < vectors.rows:
        unpaired = f"{vectors.where(payloads.lines)} onward has no payload line"
    else:
        unpaired = f"line {vectors.rows + 1} onward has no vector"
    raise InvalidArgumentError(f"{payloads.path} has {payloads.lines:,} lines and {vectors.path} {vectors.rows:,} "
                               f"vectors; they pair up line by line ({unpaired})")


def _upsert(target: Collection, batch: Batch, vectors: VectorFile) -> None:
    """One all-or-nothing upsert; its errors count rows within the batch, so
    they are told where the batch starts."""
    try:
        target.upsert(batch.ids, batch.vectors, batch.payloads)
    except VecdbError as exc:
        raise type(exc)(f"the batch starting at {vectors.where(batch.first_row)}: {exc}") from None


def _target_collection(db: Database, name: str, dim: Optional[int], source: Path, metric: Optional[str],
                       index_kind: Optional[str], hnsw_m: Optional[int], ef_construction: Optional[int]) -> Any:
    """The collection to import into: created with the options given, or
    the existing one, which must agree with them and with the vectors
    (``dim``: None when the source does not say; the rows are checked as
    they are read)."""
    try:
        existing = db.get_collection(name)
    except CollectionNotFoundError:
        if dim is None:
            raise InvalidArgumentError(f"{source} does not say the dimension of its vectors (named vectors, or no "
                                       f"vector column); create collection {name!r} first") from None
        hnsw = HNSW(M=hnsw_m or HNSW.M, ef_construction=ef_construction or HNSW.ef_construction)
        return db.create_collection(name, dim, metric or "cosine", index=Flat() if index_kind == "flat" else hnsw)
    if dim is not None and existing.dim != dim:
        raise DimensionMismatchError(f"collection {name!r} has dimension {existing.dim}; {source} has "
                                     f"vectors of dimension {dim}")
    index = existing.index
    settings = {"metric": existing.metric, "index": "flat" if isinstance(index, Flat) else "hnsw",
                "M": getattr(index, "M", None), "ef-construction": getattr(index, "ef_construction", None)}
    asked = {"metric": metric, "index": index_kind, "M": hnsw_m, "ef-construction": ef_construction}
    differing = [f"--{option} {value}" for option, value in asked.items() if value and value != settings[option]]
    if differing:
        current = ", ".join(f"{option}={value}" for option, value in settings.items() if value is not None)
        raise InvalidArgumentError(f"collection {name!r} exists with {current}; {', '.join(differing)} would "
                                   "differ (leave those options out to import into it as it is)")
    return existing


def _import_failure(reason: str, imported: int, batch_size: int) -> str:
    if not imported:
        return f"{reason}\nNothing was imported."
    return (f"{reason}\n{imported:,} points were imported before this; the failing batch wrote nothing (each "
            f"batch of up to {batch_size:,} points is all-or-nothing). Running the same command again after "
            "fixing the input is safe: the points already imported are replaced, not duplicated.")


def _pages(collection: Collection, size: int, progress: Progress, task: Task) -> Iterator[List[Record]]:
    cursor, total, done = None, collection.count(), 0
    progress(task, done, total)
    while True:
        records, cursor = collection.scroll(limit=size, cursor=cursor, with_payload=True, with_vector=True)
        done += len(records)
        progress(task, done, max(total, done))
        yield records
        if cursor is None:
            return


def _bars(quiet: bool) -> ProgressBars:
    """The command's own progress bars: on stderr (stdout keeps only the
    result) at once, terminal or not, unless ``quiet``."""
    return ProgressBars(show=not quiet, delay=0)


def _database_progress(quiet: bool) -> Progress:
    """Where an index build or upgrade on opening reports: what vecdb.open
    does by default (a bar on a terminal, after a second) unless ``quiet``."""
    return silent if quiet else terminal_bars
