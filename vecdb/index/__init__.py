"""A collection's in-memory indexes, rebuilt from LMDB or loaded from
snapshots: native indexes keyed by storage labels (:mod:`.label_index`), one
set per collection with its Matryoshka prefix indexes (:mod:`.prefix_index`),
the PCA rotation (:mod:`.rotation`), snapshot files (:mod:`.snapshot`, framed
by :mod:`.framing`) and the loader that brings them up (:mod:`.loader`)."""
