// A read-only view of n contiguous row-major vectors, the unit every search
// routine works on. It borrows memory: from a VectorStore, or from a caller's
// numpy array without a copy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/types.h"

namespace vecdb {

struct VectorsView {
  DType dtype = DType::F32;
  const void* data = nullptr;
  std::size_t n = 0;
  std::size_t dim = 0;
  // 1 / |x_i| per row (0 for a zero vector); required for Metric::Cosine.
  const float* inv_norms = nullptr;

  const void* row(std::size_t i) const {
    return static_cast<const std::uint8_t*>(data) + i * dim * dtype_size(dtype);
  }
};

// Allowed-id filter: bit i of words[i / 64] set means row i may be returned.
inline bool bit_is_set(const std::uint64_t* words, std::size_t i) {
  return (words[i >> 6] >> (i & 63)) & 1u;
}

}  // namespace vecdb
