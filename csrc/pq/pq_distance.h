// The HNSW graph's distances over PQ codes: ADC from the query (a lookup
// table built once per search or insert), and between two stored nodes the
// distance of their decoded vectors (symmetric, used while pruning; in the
// rotated space when there is one, which keeps distances).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "distance/dense_vectors.h"
#include "distance/distance_computer.h"
#include "kernels/kernels.h"
#include "pq/product_quantizer.h"

namespace vecdb {

class PqDistance final : public DistanceComputer {
 public:
  // codes: DenseVectors holding PQ8 rows; query: as the caller gave it
  // (normalized for cosine, not rotated).
  PqDistance(const DenseVectors& codes, const float* query)
      : codes_(codes),
        pq_(*codes.pq()),
        m_(pq_.m()),
        bias_(pq_.table_bias()),
        l2_(pq_.metric() == Metric::L2),
        table_(m_ * ProductQuantizer::kCentroids),
        pair_(kernels().f32_pair[static_cast<int>(l2_ ? Reduction::L2 : Reduction::Dot)]),
        left_(pq_.dim()),
        right_(pq_.dim()) {
    pq_.prepare_query(query, left_.data());  // normalizing twice changes nothing
    pq_.lookup_table(left_.data(), table_.data());
  }

  float to_query(std::uint32_t node) const override { return adc_distance(table_.data(), m_, row(node), bias_); }

  void to_query4(const std::uint32_t* nodes, float* out) const override {
    const std::uint8_t* codes[4] = {row(nodes[0]), row(nodes[1]), row(nodes[2]), row(nodes[3])};
    adc_distance4(table_.data(), m_, codes, bias_, out);
  }

  float between(std::uint32_t a, std::uint32_t b) const override {
    if (a != decoded_) {  // pruning compares one node with many: decode it once
      pq_.decode_rotated(row(a), 1, left_.data());
      decoded_ = a;
    }
    pq_.decode_rotated(row(b), 1, right_.data());
    const float raw = pair_(left_.data(), right_.data(), pq_.dim());
    return l2_ ? raw : 1.0f - raw;
  }

  void prefetch(const std::uint32_t* nodes, std::size_t count) const override {
    for (std::size_t i = 0; i < count; ++i) __builtin_prefetch(row(nodes[i]));
  }

 private:
  const std::uint8_t* row(std::uint32_t node) const { return static_cast<const std::uint8_t*>(codes_.row(node)); }

  const DenseVectors& codes_;
  const ProductQuantizer& pq_;
  std::size_t m_;
  float bias_;
  bool l2_;
  std::vector<float> table_;
  PairF32 pair_;
  mutable std::vector<float> left_, right_;
  mutable std::uint32_t decoded_ = ~std::uint32_t{0};
};

}  // namespace vecdb
