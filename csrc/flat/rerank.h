// Exact re-ranking of a shortlist: the second stage of compressed search
// (PQ scan or PQ-guided graph search picks candidates by approximate
// distance; their full vectors decide the final order).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/types.h"

namespace vecdb {

// For each of nq queries (nq x dim), the k candidates nearest by exact
// distance among its r candidates: ids candidate_ids[q * r + i] (-1: no
// candidate, skipped) with vectors candidate_vectors[(q * r + i) * dim].
// Candidate ids must be distinct per query. Writes nq x k ids and
// distances, closest first (ties to the smaller id), padded with -1 / +inf.
void rerank(const float* queries, std::size_t nq, std::size_t dim, const std::int64_t* candidate_ids,
            const float* candidate_vectors, std::size_t r, Metric metric, std::size_t k, std::size_t n_threads,
            std::int64_t* ids, float* distances);

}  // namespace vecdb
