"""Full text's shared vocabulary: how text becomes terms
(:mod:`vecdb.text.analyzer`) and what a text index is set up with
(:mod:`vecdb.text.settings`). The inverted indexes themselves are in
:mod:`vecdb.index.term_indexes`."""
