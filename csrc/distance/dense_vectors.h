// Vectors for the HNSW graph, stored contiguously by node id (float32, IEEE
// half to halve memory and bandwidth, or product-quantization codes: m bytes
// a vector), and the distance computer over float rows (pq/pq_distance.h
// has the one over codes). Cosine vectors are stored normalized, so every
// cosine distance is one dot product. Rows start on cache lines when their
// size allows it. Not in flat/: flat's VectorStore is an append-only scan
// store, while these rows are addressed by graph node, moved by compaction
// and may hold PQ codes.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "common/aligned.h"
#include "common/error.h"
#include "common/half.h"
#include "common/types.h"
#include "distance/distance_computer.h"
#include "kernels/kernels.h"
#include "pq/product_quantizer.h"

namespace vecdb {

class DenseVectors {
 public:
  // pq: the trained quantizer whose codes the rows hold (dtype PQ8 only).
  DenseVectors(std::size_t dim, Metric metric, DType dtype, std::shared_ptr<const ProductQuantizer> pq = nullptr)
      : dim_(dim), metric_(metric), dtype_(dtype), pq_(std::move(pq)),
        row_bytes_(dtype == DType::PQ8 && pq_ ? pq_->m() : dim * dtype_size(dtype)) {
    VECDB_REQUIRE(dtype == DType::F32 || dtype == DType::F16 || dtype == DType::PQ8,
                  "HNSW vectors are stored as float32, float16 or PQ codes");
    VECDB_REQUIRE((dtype == DType::PQ8) == (pq_ != nullptr), "PQ codes need a product quantizer, and only they do");
    if (pq_) {
      VECDB_REQUIRE(pq_->trained(), "the product quantizer must be trained before it stores vectors");
      VECDB_REQUIRE(pq_->dim() == dim, "the product quantizer has dimension " + std::to_string(pq_->dim()) +
                                           ", the index " + std::to_string(dim));
      VECDB_REQUIRE(pq_->metric() == metric, "the product quantizer was trained for another metric");
    }
  }

  std::size_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  DType dtype() const { return dtype_; }
  std::size_t row_bytes() const { return row_bytes_; }
  const std::shared_ptr<const ProductQuantizer>& pq() const { return pq_; }

  // Room for `capacity` rows (grows or shrinks; rows below both sizes are
  // kept). The caller excludes every reader.
  void resize(std::size_t capacity) { resize_exactly(bytes_, capacity * row_bytes_); }

  // Stores node's vector (normalized for cosine). Each node is written by
  // one thread before it is published to the graph. Zeros are stored as
  // +0 (for float32, x + 0.0f does that and only that; a float16 zero may
  // also come from rounding a tiny value of either sign): equal vectors
  // then have equal bytes, which is how an index finds identical vectors
  // (row_table.h).
  void set(std::uint32_t node, const float* vector) {
    if (dtype_ == DType::F32) {
      auto* out = static_cast<float*>(mutable_row(node));
      prepare_query(vector, out);
      for (std::size_t i = 0; i < dim_; ++i) out[i] += 0.0f;
      return;
    }
    std::vector<float> prepared(dim_);
    if (pq_) {
      pq_->prepare_query(vector, prepared.data());
      pq_->encode_prepared(prepared.data(), static_cast<std::uint8_t*>(mutable_row(node)));
      return;
    }
    prepare_query(vector, prepared.data());
    auto* out = static_cast<std::uint16_t*>(mutable_row(node));
    for (std::size_t i = 0; i < dim_; ++i) {
      const std::uint16_t half = float_to_half(prepared[i]);
      out[i] = (half & 0x7fffu) == 0 ? 0 : half;
    }
  }

  // The stored vector as float32 (for codes: the centroids they stand for).
  void decode(std::uint32_t node, float* out) const {
    if (dtype_ == DType::F32) {
      std::memcpy(out, row(node), row_bytes_);
    } else if (pq_) {
      pq_->decode(static_cast<const std::uint8_t*>(row(node)), 1, out);
    } else {
      const auto* in = static_cast<const std::uint16_t*>(row(node));
      for (std::size_t i = 0; i < dim_; ++i) out[i] = half_to_float(in[i]);
    }
  }

  const void* row(std::uint32_t node) const { return bytes_.data() + static_cast<std::size_t>(node) * row_bytes_; }
  void* mutable_row(std::uint32_t node) { return bytes_.data() + static_cast<std::size_t>(node) * row_bytes_; }
  // Raw bytes of the first `count` rows (saving and loading).
  const std::uint8_t* data() const { return bytes_.data(); }
  std::uint8_t* mutable_data() { return bytes_.data(); }

  // Moves a row to a lower node id (compaction).
  void move_row(std::uint32_t from, std::uint32_t to) {
    if (from != to) std::memmove(mutable_row(to), row(from), row_bytes_);
  }

  std::size_t memory_bytes() const {
    return bytes_.capacity() + (pq_ ? (pq_->centroids().size() + pq_->rotation().size()) * sizeof(float) : 0);
  }

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
  DType dtype_;
  std::shared_ptr<const ProductQuantizer> pq_;
  std::size_t row_bytes_;
  AlignedVector<std::uint8_t> bytes_;
};

// Distances over DenseVectors whose rows are of type Elem (float or
// std::uint16_t for half). The query is a prepared float32 vector.
template <class Elem>
class DenseDistance final : public DistanceComputer {
 public:
  DenseDistance(const DenseVectors& vectors, const float* query)
      : vectors_(vectors), query_(query), dim_(vectors.dim()), l2_(vectors.metric() == Metric::L2) {
    const int reduction = static_cast<int>(l2_ ? Reduction::L2 : Reduction::Dot);
    if constexpr (std::is_same<Elem, float>::value) {
      pair_ = kernels().f32_pair[reduction];
      pair4_ = kernels().f32_pair4[reduction];
    } else {
      pair_ = kernels().f16_pair[reduction];
      pair4_ = kernels().f16_pair4[reduction];
      scratch_.resize(dim_);
    }
  }

  float to_query(std::uint32_t node) const override { return finish(pair_(query_, row(node), dim_)); }

  void to_query4(const std::uint32_t* nodes, float* out) const override {
    const Elem* rows[4] = {row(nodes[0]), row(nodes[1]), row(nodes[2]), row(nodes[3])};
    pair4_(query_, rows, dim_, out);
    for (int i = 0; i < 4; ++i) out[i] = finish(out[i]);
  }

  float between(std::uint32_t a, std::uint32_t b) const override {
    if constexpr (std::is_same<Elem, float>::value) {
      return finish(pair_(row(a), row(b), dim_));
    } else {
      if (a != decoded_) {  // pruning compares one node with many: decode it once
        vectors_.decode(a, scratch_.data());
        decoded_ = a;
      }
      return finish(pair_(scratch_.data(), row(b), dim_));
    }
  }

  void prefetch(const std::uint32_t* nodes, std::size_t count) const override {
    // The first two lines of each row: the hardware prefetcher follows the
    // rest once the kernel streams through it.
    for (std::size_t i = 0; i < count; ++i) {
      const char* p = reinterpret_cast<const char*>(row(nodes[i]));
      __builtin_prefetch(p);
      __builtin_prefetch(p + 64);
    }
  }

 private:
  using Pair = float (*)(const float*, const Elem*, std::size_t);
  using Pair4 = void (*)(const float*, const Elem* const*, std::size_t, float*);

  const Elem* row(std::uint32_t node) const { return static_cast<const Elem*>(vectors_.row(node)); }
  float finish(float raw) const { return l2_ ? raw : 1.0f - raw; }

  const DenseVectors& vectors_;
  const float* query_;
  std::size_t dim_;
  bool l2_;
  Pair pair_;
  Pair4 pair4_;
  mutable std::vector<float> scratch_;  // f16 only: one side of between(), decoded
  mutable std::uint32_t decoded_ = ~std::uint32_t{0};
};

}  // namespace vecdb
