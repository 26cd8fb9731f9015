// Exact k-nearest-neighbour search by full scan: the oracle for every recall
// figure in the project.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/types.h"
#include "flat/vectors_view.h"

namespace vecdb {

struct FlatSearchParams {
  std::size_t k = 10;                  // results per query (output row width)
  Metric metric = Metric::L2;
  const std::uint64_t* allowed = nullptr;  // optional filter, >= ceil(base.n / 64) words
  std::size_t n_threads = 1;
};

// Writes, for each query, the k closest base rows in ascending (distance, id)
// order into ids/distances (queries.n x k, row-major). When fewer than k rows
// exist or pass the filter, the remaining slots hold id -1 and distance +inf.
// Cosine uses the views' inv_norms, computing any that are missing.
// Thread-safe for concurrent calls.
void flat_search(const VectorsView& base, const VectorsView& queries,
                 const FlatSearchParams& params, std::int64_t* ids, float* distances);

}  // namespace vecdb
