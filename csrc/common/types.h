// Vocabulary types shared by every layer of the native core.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vecdb {

// Distances are always "smaller is closer":
//   L2     squared Euclidean distance
//   IP     1 - dot(a, b)            (as hnswlib and usearch report it)
//   Cosine 1 - cos(a, b); a zero vector has cos = 0 with everything
enum class Metric : int { L2 = 0, IP = 1, Cosine = 2 };

// Element type of stored vectors. Queries are float32 for F32/F16/PQ8
// stores and int8 for I8 stores. PQ8 rows are product-quantization codes
// (one byte per sub-vector; only graph storage uses them).
enum class DType : int { F32 = 0, F16 = 1, I8 = 2, PQ8 = 3 };

// Bytes per element (PQ8: per sub-vector code).
inline std::size_t dtype_size(DType t) {
  return t == DType::F32 ? 4 : (t == DType::F16 ? 2 : 1);
}

// Largest supported dimension: int8 squared L2 accumulates in int32, and
// 255^2 * 32768 still fits.
constexpr std::size_t kMaxDim = 32768;

}  // namespace vecdb
