#include "flat/distances.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "common/parallel.h"

namespace vecdb {
void check_query_type(const VectorsView& base, const VectorsView& queries) {
  const DType expected = base.dtype == DType::I8 ? DType::I8 : DType::F32;
  VECDB_REQUIRE(queries.dtype == expected,
                std::string("queries must be ") + (expected == DType::I8 ? "int8" : "float32") +
                    " for a " + (base.dtype == DType::I8 ? "int8" : base.dtype == DType::F16 ? "float16" : "float32") +
                    " base");
  VECDB_REQUIRE(queries.dim == base.dim, "query dimension " + std::to_string(queries.dim) +
                                             " does not match the base dimension " +
                                             std::to_string(base.dim));
}

void raw_block(const KernelTable& kernels, Reduction reduction, bool streaming,
               const VectorsView& base, const VectorsView& queries, std::size_t q0, std::size_t qc,
               std::size_t x0, std::size_t xc, float* out) {
  const int r = static_cast<int>(reduction);
  const int s = streaming ? 1 : 0;
  const std::size_t d = base.dim;
  switch (base.dtype) {
    case DType::F32:
      kernels.f32[s][r](static_cast<const float*>(queries.data) + q0 * d, qc,
                     static_cast<const float*>(base.data) + x0 * d, xc, d, out);
      return;
    case DType::F16:
      kernels.f16[s][r](static_cast<const float*>(queries.data) + q0 * d, qc,
                     static_cast<const std::uint16_t*>(base.data) + x0 * d, xc, d, out);
      return;
    case DType::I8:
      kernels.i8[s][r](static_cast<const std::int8_t*>(queries.data) + q0 * d, qc,
                    static_cast<const std::int8_t*>(base.data) + x0 * d, xc, d, out);
      return;
    case DType::PQ8:  // codes are searched by pq/adc_search, never as a flat view
      VECDB_ASSERT(base.dtype != DType::PQ8);
  }
}

void compute_inv_norms(const VectorsView& rows, float* out, std::size_t n_threads) {
  const KernelTable& kernels = vecdb::kernels();
  // The float16 kernels take a float32 left operand, so a half row is dotted
  // with its float32 conversion.
  const std::size_t chunk = 4096;
  const std::size_t n_chunks = (rows.n + chunk - 1) / chunk;
  const std::size_t threads = rows.n * rows.dim > (1u << 20) ? n_threads : 1;
  parallel_for(n_chunks, threads, [&](std::size_t c, std::size_t) {
    const std::size_t end = std::min(rows.n, (c + 1) * chunk);
    std::vector<float> widened(rows.dtype == DType::F16 ? rows.dim : 0);
    for (std::size_t i = c * chunk; i < end; ++i) {
      float squared = 0.0f;
      const int dot = static_cast<int>(Reduction::Dot);
      switch (rows.dtype) {
        case DType::F32: {
          const float* x = static_cast<const float*>(rows.row(i));
          kernels.f32[0][dot](x, 1, x, 1, rows.dim, &squared);
          break;
        }
        case DType::F16: {
          const std::uint16_t* x = static_cast<const std::uint16_t*>(rows.row(i));
          for (std::size_t j = 0; j < rows.dim; ++j) widened[j] = half_to_float(x[j]);
          kernels.f16[0][dot](widened.data(), 1, x, 1, rows.dim, &squared);
          break;
        }
        case DType::I8: {
          const std::int8_t* x = static_cast<const std::int8_t*>(rows.row(i));
          kernels.i8[0][dot](x, 1, x, 1, rows.dim, &squared);
          break;
        }
        case DType::PQ8: {
          VECDB_ASSERT(rows.dtype != DType::PQ8);
          break;
        }
      }
      out[i] = squared > 0.0f ? 1.0f / std::sqrt(squared) : 0.0f;
    }
  });
}

}  // namespace vecdb

namespace vecdb {

VectorsView with_inv_norms(VectorsView rows, std::vector<float>& storage, std::size_t n_threads) {
  if (rows.inv_norms == nullptr) {
    storage.resize(rows.n);
    compute_inv_norms(rows, storage.data(), n_threads);
    rows.inv_norms = storage.data();
  }
  return rows;
}

void pairwise_distances(const VectorsView& base_rows, const VectorsView& query_rows,
                        Metric metric, std::size_t n_threads, float* out) {
  check_query_type(base_rows, query_rows);
  std::vector<float> base_norms, query_norms;
  const bool cosine = metric == Metric::Cosine;
  const VectorsView base = cosine ? with_inv_norms(base_rows, base_norms, n_threads) : base_rows;
  const VectorsView queries =
      cosine ? with_inv_norms(query_rows, query_norms, n_threads) : query_rows;
  const KernelTable& kernels = vecdb::kernels();
  const Reduction reduction = reduction_for(metric);
  const std::size_t block = rows_per_block(base);
  const std::size_t query_chunk = 32;
  const std::size_t n_query_chunks = (queries.n + query_chunk - 1) / query_chunk;
  const std::size_t n_blocks = (base.n + block - 1) / block;
  const std::size_t work = queries.n * base.n * base.dim;
  const std::size_t threads = work > (1u << 22) ? n_threads : 1;
  // One task per (query chunk, base block): a single query still splits.
  parallel_for(n_query_chunks * n_blocks, threads, [&](std::size_t task, std::size_t) {
    const std::size_t q0 = (task / n_blocks) * query_chunk;
    const std::size_t x0 = (task % n_blocks) * block;
    const std::size_t qc = std::min(query_chunk, queries.n - q0);
    const std::size_t xc = std::min(block, base.n - x0);
    std::vector<float> raw(qc * xc);
    raw_block(kernels, reduction, streams_from_memory(base, queries.n), base, queries, q0, qc, x0,
              xc, raw.data());
    for (std::size_t a = 0; a < qc; ++a) {
      const float q_inv = metric == Metric::Cosine ? queries.inv_norms[q0 + a] : 0.0f;
      float* row = out + (q0 + a) * base.n + x0;
      for (std::size_t b = 0; b < xc; ++b) {
        const float x_inv = metric == Metric::Cosine ? base.inv_norms[x0 + b] : 0.0f;
        row[b] = finish_distance(metric, raw[a * xc + b], q_inv, x_inv);
      }
    }
  });
}

}  // namespace vecdb
