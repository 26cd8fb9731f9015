// AVX2 + FMA + F16C kernels (Haswell / Zen and later).
//
// The whole unit is compiled for that target by a pragma, not by a
// command-line flag, so the build needs no per-file flags and nothing outside
// this unit can pick up AVX2 code. Standard headers come before the pragma.
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace vecdb {
namespace avx2 {

struct FloatLanes {
  using V = __m256;
  static constexpr std::size_t W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load(const std::uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V load_tail(const float* p, std::size_t count) {
    // Lanes >= count are masked off: never read, loaded as zero.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane);
    return _mm256_maskload_ps(p, mask);
  }
  static V load_tail(const std::uint16_t* p, std::size_t count) {
    std::uint16_t buffer[W] = {};
    std::memcpy(buffer, p, count * sizeof(std::uint16_t));
    return load(buffer);
  }
  static V broadcast(float x) { return _mm256_set1_ps(x); }
  static void store(float* p, V a) { _mm256_storeu_ps(p, a); }
  static V select_less(V a, V b, V x, V y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  // Both reductions sum each vector as ((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7)),
  // so a batch (hsum4) and a lone query (hsum) get identical bits.
  static float hsum(V v) {
    const __m256 pairs = _mm256_hadd_ps(v, v);
    const __m256 quads = _mm256_hadd_ps(pairs, pairs);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
  }
  static void hsum4(V a, V b, V c, V d, float* out) {
    const __m256 quads = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
  }
};

// 16 int8 values sign-extended to int16; pmaddwd multiplies pairs and adds
// neighbours into 8 int32 lanes, exact for |q - x| <= 255.
struct Int8Lanes {
  using V = __m256i;
  using Acc = __m256i;
  static constexpr std::size_t W = 16;
  static Acc zero() { return _mm256_setzero_si256(); }
  static V load(const std::int8_t* p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V load_tail(const std::int8_t* p, std::size_t count) {
    std::int8_t buffer[W] = {};
    std::memcpy(buffer, p, count);
    return load(buffer);
  }
  static Acc dot(Acc acc, V q, V x) { return _mm256_add_epi32(acc, _mm256_madd_epi16(q, x)); }
  static Acc l2(Acc acc, V q, V x) {
    const V diff = _mm256_sub_epi16(q, x);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(diff, diff));
  }
  static std::int32_t hsum(Acc v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
  }
};

// 16 ymm registers: 4x3 = 12 accumulators + 3 vectors + 1 query. L2 also
// needs a difference register and spills one, yet measured 1.6x faster at
// 4x3 than at 4x2 or 3x3 on Zen 3 (fewer loads per FMA).
struct Blocking {
  static constexpr int kDotQueries = 4, kDotVectors = 3;
  static constexpr int kL2Queries = 4, kL2Vectors = 3;
  // A lone query against cached rows: 4 rows at once (see tile()).
  static constexpr int kSingleQueryVectors = 4;
};

#include "kernels/tile_generic.h"

constexpr KernelTable kTable = make_table("avx2");

}  // namespace avx2
}  // namespace vecdb

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace vecdb {
const KernelTable* avx2_kernels() { return &avx2::kTable; }
}  // namespace vecdb

#else  // not x86

namespace vecdb {
const KernelTable* avx2_kernels() { return nullptr; }
}  // namespace vecdb

#endif
