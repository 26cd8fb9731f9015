// Float32 vectors for the HNSW graph, stored contiguously by node id, and the
// distance computer over them. Cosine vectors are stored normalized so every
// cosine distance is one dot product.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/types.h"
#include "hnsw/distance_computer.h"
#include "kernels/kernels.h"

namespace vecdb {

class DenseVectors {
 public:
  DenseVectors(std::size_t dim, Metric metric) : dim_(dim), metric_(metric) {}

  std::size_t dim() const { return dim_; }
  Metric metric() const { return metric_; }

  // Caller holds the index's exclusive growth lock.
  void reserve(std::size_t capacity) { data_.resize(capacity * dim_); }

  // Writes node's vector (normalized for cosine). Each node is written by one
  // thread before it is published to the graph.
  void set(std::uint32_t node, const float* vector) {
    float* row = data_.data() + static_cast<std::size_t>(node) * dim_;
    std::memcpy(row, vector, dim_ * sizeof(float));
    if (metric_ == Metric::Cosine) normalize(row, dim_);
  }

  const float* row(std::uint32_t node) const {
    return data_.data() + static_cast<std::size_t>(node) * dim_;
  }
  // Raw access for loading a saved index (rows already prepared).
  float* mutable_row(std::uint32_t node) { return data_.data() + static_cast<std::size_t>(node) * dim_; }

  std::size_t memory_bytes() const { return data_.capacity() * sizeof(float); }

  // A query prepared for this space (normalized for cosine).
  void prepare_query(const float* query, float* out) const {
    std::memcpy(out, query, dim_ * sizeof(float));
    if (metric_ == Metric::Cosine) normalize(out, dim_);
  }

  static void normalize(float* v, std::size_t dim) {
    double squared = 0.0;
    for (std::size_t i = 0; i < dim; ++i) squared += static_cast<double>(v[i]) * v[i];
    if (squared > 0.0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(squared));
      for (std::size_t i = 0; i < dim; ++i) v[i] *= inv;
    }
  }

 private:
  std::size_t dim_;
  Metric metric_;
  std::vector<float> data_;
};

class DenseDistance final : public DistanceComputer {
 public:
  // query must already be prepared (DenseVectors::prepare_query) or be a
  // stored row.
  DenseDistance(const DenseVectors& vectors, const float* query)
      : vectors_(vectors),
        query_(query),
        l2_(vectors.metric() == Metric::L2),
        kernel_(kernels().f32_pair[static_cast<int>(l2_ ? Reduction::L2 : Reduction::Dot)]) {}

  float to_query(std::uint32_t node) const override { return distance(query_, vectors_.row(node)); }
  float between(std::uint32_t a, std::uint32_t b) const override {
    return distance(vectors_.row(a), vectors_.row(b));
  }
  void prefetch(std::uint32_t node) const override {
    const char* p = reinterpret_cast<const char*>(vectors_.row(node));
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
  }

 private:
  float distance(const float* a, const float* b) const {
    const float raw = kernel_(a, b, vectors_.dim());
    return l2_ ? raw : 1.0f - raw;
  }

  const DenseVectors& vectors_;
  const float* query_;
  bool l2_;
  PairF32 kernel_;
};

}  // namespace vecdb
