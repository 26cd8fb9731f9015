// Fusion of a hybrid search's rankings (its vector, text and sparse
// branches) into one: reciprocal rank fusion (RRF) or distribution-based
// score fusion (DBSF); see vecdb/fusion.py for what each computes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vecdb {

enum class FusionKind { Rrf, Dbsf };

// One branch's ranking: labels best first, their scores (higher is better).
struct Ranking {
  const std::int64_t* labels;
  const float* scores;
  std::size_t size;
  double weight;
};

struct Fused {
  std::vector<std::int64_t> labels;  // best first; ties by the smaller label
  std::vector<double> scores;
};

// The k best labels by fused score. RRF: sum over branches of
// weight / (rrf_k + rank), rank 1 the best; DBSF: sum of weight times the
// score mapped to [0, 1] by the branch's mean +- 3 standard deviations
// (0.5 when its scores do not vary).
Fused fuse(const std::vector<Ranking>& rankings, FusionKind kind, double rrf_k, std::size_t k);

}  // namespace vecdb
