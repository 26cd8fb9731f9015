// Metric distances assembled from the raw kernel reductions.
#pragma once

#include <cstddef>
#include <vector>

#include "common/types.h"
#include "flat/vectors_view.h"
#include "kernels/kernels.h"

namespace vecdb {

inline Reduction reduction_for(Metric metric) {
  return metric == Metric::L2 ? Reduction::L2 : Reduction::Dot;
}

// Base rows per kernel call: ~128 KiB, so a block stays in L2 while a group
// of queries streams over it.
inline std::size_t rows_per_block(const VectorsView& base) {
  const std::size_t row_bytes = base.dim * dtype_size(base.dtype);
  const std::size_t rows = (std::size_t{128} << 10) / (row_bytes == 0 ? 1 : row_bytes);
  return rows < 8 ? 8 : rows;
}

// Queries are a view too: float32 rows for float32/float16 bases, int8 rows
// for int8 bases (check_query_type enforces it).
void check_query_type(const VectorsView& base, const VectorsView& queries);

// Whether a scan of base by m queries reads rows once from DRAM (few queries,
// a base larger than a typical L3 share), which picks the streaming kernels.
inline bool streams_from_memory(const VectorsView& base, std::size_t m) {
  constexpr std::size_t kCachedBytes = std::size_t{16} << 20;
  return m < 4 && base.n * base.dim * dtype_size(base.dtype) > kCachedBytes;
}

// Raw reductions of query rows q0..q0+qc against base rows x0..x0+xc into out
// (qc x xc, row-major), with the streaming or the cached-rows kernels.
void raw_block(const KernelTable& kernels, Reduction reduction, bool streaming,
               const VectorsView& base, const VectorsView& queries, std::size_t q0, std::size_t qc,
               std::size_t x0, std::size_t xc, float* out);

// 1 / |row| for each row of the view (0 for a zero row), multi-threaded.
void compute_inv_norms(const VectorsView& rows, float* out, std::size_t n_threads);

// The view with inv_norms set, computing them into storage if it had none.
VectorsView with_inv_norms(VectorsView rows, std::vector<float>& storage, std::size_t n_threads);

// Turns a raw reduction into the metric's distance. For cosine, q_inv and
// x_inv are the inverse norms of the two vectors.
inline float finish_distance(Metric metric, float raw, float q_inv, float x_inv) {
  switch (metric) {
    case Metric::L2: return raw;
    case Metric::IP: return 1.0f - raw;
    case Metric::Cosine: return 1.0f - raw * q_inv * x_inv;
  }
  return raw;
}

// Full distance matrix out (queries.n x base.n).
void pairwise_distances(const VectorsView& base, const VectorsView& queries, Metric metric,
                        std::size_t n_threads, float* out);

}  // namespace vecdb
