// AVX-512F kernels (Skylake-SP / Zen 4 and later). Only AVX-512F is assumed,
// so int8 widens to int32 lanes and multiplies with vpmulld rather than
// needing AVX-512BW. Same unit-wide target pragma scheme as isa_avx2.cpp.
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")
// GCC 12's avx512fintrin.h reduction helpers read _mm512_undefined_*()
// values on purpose and trip these warnings (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace vecdb {
namespace avx512 {

struct FloatLanes {
  using V = __m512;
  static constexpr std::size_t W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const std::uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V load_tail(const float* p, std::size_t count) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1u), p);
  }
  static V load_tail(const std::uint16_t* p, std::size_t count) {
    std::uint16_t buffer[W] = {};
    std::memcpy(buffer, p, count * sizeof(std::uint16_t));
    return load(buffer);
  }
  static V broadcast(float x) { return _mm512_set1_ps(x); }
  static void store(float* p, V a) { _mm512_storeu_ps(p, a); }
  static V select_less(V a, V b, V x, V y) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  // Halves first, then the AVX2 tree: hsum and hsum4 agree bit for bit.
  static __m256 fold(V v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
  static float hsum(V v) {
    const __m256 half = fold(v);
    const __m256 pairs = _mm256_hadd_ps(half, half);
    const __m256 quads = _mm256_hadd_ps(pairs, pairs);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
  }
  static void hsum4(V a, V b, V c, V d, float* out) {
    const __m256 quads = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(quads), _mm256_extractf128_ps(quads, 1)));
  }
};

struct Int8Lanes {
  using V = __m512i;
  using Acc = __m512i;
  static constexpr std::size_t W = 16;
  static Acc zero() { return _mm512_setzero_si512(); }
  static V load(const std::int8_t* p) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V load_tail(const std::int8_t* p, std::size_t count) {
    std::int8_t buffer[W] = {};
    std::memcpy(buffer, p, count);
    return load(buffer);
  }
  static Acc dot(Acc acc, V q, V x) { return _mm512_add_epi32(acc, _mm512_mullo_epi32(q, x)); }
  static Acc l2(Acc acc, V q, V x) {
    const V diff = _mm512_sub_epi32(q, x);
    return _mm512_add_epi32(acc, _mm512_mullo_epi32(diff, diff));
  }
  static std::int32_t hsum(Acc v) { return _mm512_reduce_add_epi32(v); }
};

// 32 zmm registers.
struct Blocking {
  static constexpr int kDotQueries = 4, kDotVectors = 4;
  static constexpr int kL2Queries = 4, kL2Vectors = 3;
  // A lone query against cached rows: 4 rows at once (see tile()).
  static constexpr int kSingleQueryVectors = 4;
};

#include "kernels/tile_generic.h"

constexpr KernelTable kTable = make_table("avx512");

}  // namespace avx512
}  // namespace vecdb

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

namespace vecdb {
const KernelTable* avx512_kernels() { return &avx512::kTable; }
}  // namespace vecdb

#else  // not x86

namespace vecdb {
const KernelTable* avx512_kernels() { return nullptr; }
}  // namespace vecdb

#endif
