// Distance kernels and their run-time dispatch.
//
// Every kernel computes a block of raw reductions, out[i * n + j] =
// reduce(Q[i], X[j]) for i < m, j < n over d elements, where reduce is either
// the dot product or the squared L2 distance. Metrics (1 - dot, cosine) are
// assembled from these by the callers. One entry point per (element type,
// reduction) serves a single pair (m = n = 1), one query against many vectors
// (m = 1) and a cache-blocked batch (m > 1): every pair is accumulated in the
// same order whatever the block shape, so single and batched searches return
// bit-identical distances on a given SIMD level.
//
// Each SIMD level (portable, AVX2+FMA+F16C, AVX-512F) fills one KernelTable;
// the fastest level the CPU supports is chosen at first use, and tests can
// force any available level.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vecdb {

enum class Reduction : int { Dot = 0, L2 = 1 };

using TileF32 = void (*)(const float* Q, std::size_t m, const float* X, std::size_t n,
                         std::size_t d, float* out);
using TileF16 = void (*)(const float* Q, std::size_t m, const std::uint16_t* X,
                         std::size_t n, std::size_t d, float* out);
using PairF32 = float (*)(const float* a, const float* b, std::size_t d);
using PairF16 = float (*)(const float* a, const std::uint16_t* b, std::size_t d);
using Pair4F32 = void (*)(const float* q, const float* const* rows, std::size_t d, float* out);
using Pair4F16 = void (*)(const float* q, const std::uint16_t* const* rows, std::size_t d, float* out);
using TransposedScores = void (*)(const float* x, std::size_t n, std::size_t d, const float* ct,
                                  const float* bias, std::size_t k, float* out);
using TransposedArgmin = void (*)(const float* x, std::size_t n, std::size_t d, const float* ct,
                                  const float* bias, std::size_t k, std::uint32_t* out);
using TileI8 = void (*)(const std::int8_t* Q, std::size_t m, const std::int8_t* X,
                        std::size_t n, std::size_t d, float* out);

// Indexed [streaming][reduction]: the streaming variants are for rows read
// once from DRAM by a lone query, the others for rows in cache; both give
// identical results.
struct KernelTable {
  const char* name;
  TileF32 f32[2][2];
  TileF16 f16[2][2];  // query float32, stored IEEE half
  TileI8 i8[2][2];    // int32 accumulation, exact; returned as float
  // Graph search: fast, but rounded differently from the tiles.
  PairF32 f32_pair[2];   // one pair
  PairF16 f16_pair[2];   // query float32, stored IEEE half
  Pair4F32 f32_pair4[2];  // one query against four rows
  Pair4F16 f16_pair4[2];
  // out[i * k + c] = bias[c] + dot(x_i, column c of ct (d x k)); k a
  // multiple of 16. For PQ: sub-vectors against transposed centroids.
  TransposedScores transposed_scores;
  // out[i] = the c minimizing that score (the first on ties); k a multiple of 32.
  TransposedArgmin transposed_argmin;
};

enum class SimdLevel : int { Portable = 0, AVX2 = 1, AVX512 = 2 };

// Tables defined by the per-ISA translation units (constant-initialized, so
// loading the module runs no ISA-specific code). A level not compiled for this
// architecture returns a null pointer.
const KernelTable* portable_kernels();
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();

// The active table (thread-safe; chosen on first use).
const KernelTable& kernels();

// Levels this CPU and build can run, slowest first.
std::vector<SimdLevel> available_simd_levels();
SimdLevel active_simd_level();
// Forces a level; throws vecdb::Error if it is not available here.
void set_simd_level(SimdLevel level);

const char* simd_level_name(SimdLevel level);
SimdLevel simd_level_from_name(const std::string& name);

// CPU feature flags as detected at run time.
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, avx512f = false;
};
CpuFeatures cpu_features();

}  // namespace vecdb
