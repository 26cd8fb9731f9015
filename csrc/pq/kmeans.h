// k-means on one small subspace, the building block of PQ training.
//
// Seeding is k-means++ (Arthur & Vassilvitskii) on a bounded subsample, so
// it costs about one Lloyd iteration; then a fixed number of Lloyd
// iterations whose assignment step is the L2 tile kernel (points x
// centroids). A cluster left empty takes over part of the most populated
// one (FAISS's split), so every centroid stays useful. Deterministic for a
// given seed: one thread per call, no dependence on scheduling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vecdb {

struct KMeansParams {
  std::size_t k = 256;
  std::size_t iterations = 20;
  std::uint64_t seed = 0;
};

// Clusters n points of dimension d (row-major) into params.k centroids
// (k x d, row-major), which it returns. Needs n >= k.
std::vector<float> kmeans(const float* points, std::size_t n, std::size_t d, const KMeansParams& params);

// k centroids of dimension d laid out for nearest-centroid search with the
// transposed_scores kernel: |x - c|^2 - |x|^2 = |c|^2 + x . (-2 c).
struct CentroidColumns {
  CentroidColumns(const float* centroids, std::size_t k, std::size_t d);
  std::size_t k, d;
  std::vector<float> minus_two_t;  // d x k: -2 * centroid[c][j] at [j * k + c]
  std::vector<float> norms;        // k squared norms
};

// Index of the nearest centroid to each of n points (n x d; the first on
// ties). k must be a multiple of 32.
void assign_nearest(const float* points, std::size_t n, const CentroidColumns& columns, std::uint32_t* out);

}  // namespace vecdb
