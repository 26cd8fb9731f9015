#include "pq/kmeans.h"

#include <algorithm>
#include <limits>
#include <random>

#include "common/error.h"
#include "kernels/kernels.h"

namespace vecdb {
namespace {

constexpr std::size_t kSeedingPerCluster = 16;  // k-means++ runs on at most 16 points per cluster

float squared_l2(const float* a, const float* b, std::size_t d) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < d; ++i) {
    const float diff = a[i] - b[i];
    sum += diff * diff;
  }
  return sum;
}

// k-means++ seeding: each next centroid is a point drawn with probability
// proportional to its squared distance from the centroids chosen so far.
std::vector<float> seed_plus_plus(const float* points, std::size_t n, std::size_t d, std::size_t k,
                                  std::mt19937_64& rng) {
  // Seed from a random subsample: the same quality in practice at a
  // fraction of the cost (each step is a pass over the sample).
  std::vector<std::uint32_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  const std::size_t sample = std::min(n, k * kSeedingPerCluster);
  for (std::size_t i = 0; i < sample; ++i) {
    std::uniform_int_distribution<std::size_t> pick(i, n - 1);
    std::swap(order[i], order[pick(rng)]);
  }
  std::vector<float> centroids(k * d);
  std::vector<double> nearest(sample, std::numeric_limits<double>::infinity());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::size_t chosen = order[std::uniform_int_distribution<std::size_t>(0, sample - 1)(rng)];
  for (std::size_t c = 0; c < k; ++c) {
    std::copy(points + chosen * d, points + (chosen + 1) * d, centroids.begin() + c * d);
    double total = 0.0;
    for (std::size_t i = 0; i < sample; ++i) {
      const double dist = squared_l2(points + order[i] * d, centroids.data() + c * d, d);
      nearest[i] = std::min(nearest[i], dist);
      total += nearest[i];
    }
    if (c + 1 == k) break;
    // All remaining points coincide with a centroid: any point will do.
    double target = unit(rng) * total;
    std::size_t next = sample - 1;
    if (total > 0.0) {
      for (std::size_t i = 0; i < sample; ++i) {
        target -= nearest[i];
        if (target < 0.0) {
          next = i;
          break;
        }
      }
    } else {
      next = std::uniform_int_distribution<std::size_t>(0, sample - 1)(rng);
    }
    chosen = order[next];
  }
  return centroids;
}

}  // namespace

CentroidColumns::CentroidColumns(const float* centroids, std::size_t k_, std::size_t d_)
    : k(k_), d(d_), minus_two_t(k_ * d_), norms(k_) {
  for (std::size_t c = 0; c < k; ++c) {
    float squared = 0.0f;
    for (std::size_t j = 0; j < d; ++j) {
      const float value = centroids[c * d + j];
      minus_two_t[j * k + c] = -2.0f * value;
      squared += value * value;
    }
    norms[c] = squared;
  }
}

void assign_nearest(const float* points, std::size_t n, const CentroidColumns& columns, std::uint32_t* out) {
  kernels().transposed_argmin(points, n, columns.d, columns.minus_two_t.data(), columns.norms.data(), columns.k, out);
}

std::vector<float> kmeans(const float* points, std::size_t n, std::size_t d, const KMeansParams& params) {
  const std::size_t k = params.k;
  VECDB_REQUIRE(k >= 32 && k % 32 == 0, "k-means needs a multiple of 32 centroids");
  VECDB_REQUIRE(n >= k, "k-means needs at least " + std::to_string(k) + " points, got " +
                                      std::to_string(n));
  std::mt19937_64 rng(params.seed);
  std::vector<float> centroids = seed_plus_plus(points, n, d, k, rng);
  std::vector<std::uint32_t> assignment(n);
  std::vector<double> sums(k * d);
  std::vector<std::size_t> sizes(k);
  for (std::size_t iteration = 0; iteration < params.iterations; ++iteration) {
    assign_nearest(points, n, CentroidColumns(centroids.data(), k, d), assignment.data());
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(sizes.begin(), sizes.end(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t c = assignment[i];
      ++sizes[c];
      for (std::size_t j = 0; j < d; ++j) sums[c * d + j] += points[i * d + j];
    }
    for (std::size_t c = 0; c < k; ++c)
      if (sizes[c] > 0)
        for (std::size_t j = 0; j < d; ++j) centroids[c * d + j] = static_cast<float>(sums[c * d + j] / sizes[c]);
    // An empty cluster takes half of the largest one: a copy of its
    // centroid, both nudged apart, so the next assignment splits it.
    for (std::size_t c = 0; c < k; ++c) {
      if (sizes[c] > 0) continue;
      const std::size_t largest = static_cast<std::size_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
      if (sizes[largest] < 2) break;
      constexpr float kNudge = 1.0f / 1024;
      for (std::size_t j = 0; j < d; ++j) {
        const float value = centroids[largest * d + j];
        const float step = value == 0.0f ? kNudge * kNudge : value * kNudge;
        centroids[c * d + j] = (j % 2 == 0) ? value + step : value - step;
        centroids[largest * d + j] = (j % 2 == 0) ? value - step : value + step;
      }
      sizes[c] = sizes[largest] / 2;
      sizes[largest] -= sizes[c];
    }
  }
  return centroids;
}

}  // namespace vecdb
