"""Data in and out of a database: backups and restores (:mod:`.backup`),
collection copies (:mod:`.collection_copy`), backups and restores of one
collection (:mod:`.collection_backup`), import and export files
(:mod:`.importers`, :mod:`.exporters`), and the staging folders they write
through (:mod:`.staging`)."""
