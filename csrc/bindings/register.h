// What each binding file adds to vecdb._core; module.cpp calls these in turn.
#pragma once

#include <pybind11/pybind11.h>

namespace vecdb {
namespace bindings {

// Exact search: knn, pairwise, FlatIndex and the exact re-ranking of shortlists (bindings/flat.cpp).
void register_flat(pybind11::module_& m);
// Kernel selection and the CPU it depends on: features, SIMD levels, hardware threads (bindings/simd.cpp).
void register_simd(pybind11::module_& m);
// The HNSW graph index (bindings/hnsw.cpp).
void register_hnsw(pybind11::module_& m);
// Product quantization: the quantizer, its codes, lookup tables and ADC search (bindings/pq.cpp).
void register_pq(pybind11::module_& m);
// Integrity of what is stored: checksum64, CRC-32C over stored values, the LMDB file check (bindings/storage.cpp).
void register_storage(pybind11::module_& m);
// Checks of a caller's arrays made before any index sees them: first_nonfinite_row (bindings/arrays.cpp).
void register_arrays(pybind11::module_& m);
// Payload filters tested on stored payloads in place, for fields without a payload index (bindings/filters.cpp).
void register_filters(pybind11::module_& m);
// The id cache: the ids of a collection's labels in memory, returned as Python objects (bindings/ids.cpp).
void register_ids(pybind11::module_& m);
// The inverted index of BM25 full text and sparse vectors (bindings/text.cpp).
void register_text(pybind11::module_& m);
// The fusion of a hybrid search's rankings (bindings/fusion.cpp).
void register_fusion(pybind11::module_& m);

}  // namespace bindings
}  // namespace vecdb
