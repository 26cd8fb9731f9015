#include "flat/rerank.h"

#include <cmath>

#include "common/parallel.h"
#include "kernels/kernels.h"
#include "kernels/topk.h"

namespace vecdb {

void rerank(const float* queries, std::size_t nq, std::size_t dim, const std::int64_t* candidate_ids,
            const float* candidate_vectors, std::size_t r, Metric metric, std::size_t k, std::size_t n_threads,
            std::int64_t* ids, float* distances) {
  const KernelTable& table = kernels();
  const auto l2 = table.f32_pair[static_cast<int>(Reduction::L2)];
  const auto dot = table.f32_pair[static_cast<int>(Reduction::Dot)];
  auto inv_norm = [&](const float* v) {
    const float squared = dot(v, v, dim);
    return squared > 0.0f ? 1.0f / std::sqrt(squared) : 0.0f;
  };
  parallel_for(nq, nq >= 8 ? n_threads : 1, [&](std::size_t q, std::size_t) {
    const float* query = queries + q * dim;
    const float query_inv = metric == Metric::Cosine ? inv_norm(query) : 1.0f;
    TopK best(k);
    for (std::size_t i = 0; i < r; ++i) {
      const std::int64_t id = candidate_ids[q * r + i];
      if (id < 0) continue;
      const float* row = candidate_vectors + (q * r + i) * dim;
      float distance;
      if (metric == Metric::L2) {
        distance = l2(query, row, dim);
      } else if (metric == Metric::IP) {
        distance = 1.0f - dot(query, row, dim);
      } else {
        distance = 1.0f - dot(query, row, dim) * query_inv * inv_norm(row);
      }
      best.push(distance, id);
    }
    best.write_sorted(k, ids + q * k, distances + q * k);
  });
}

}  // namespace vecdb
