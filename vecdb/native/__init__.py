"""Checked Python wrappers over the native core (``vecdb._core``): exact
search (:mod:`.flat`) and re-ranking (:mod:`.rerank`), the HNSW graph
(:mod:`.hnsw`), product quantization (:mod:`.pq`), the SIMD level
(:mod:`.simd`); :mod:`.arrays` checks every array before it crosses into C++.
Nothing here knows about LMDB or collections."""
