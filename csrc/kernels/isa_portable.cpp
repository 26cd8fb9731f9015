// Portable kernels: plain C++ over fixed-width lane arrays, which compilers
// auto-vectorize for the baseline ISA (SSE2 on x86-64, NEON on aarch64). The
// fallback on CPUs without AVX2 and the reference level for tests.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/half.h"
#include "kernels/kernels.h"

namespace vecdb {
namespace portable {

struct FloatLanes {
  static constexpr std::size_t W = 8;
  struct V {
    float v[W];
  };
  static V zero() { return V{}; }
  static V load(const float* p) {
    V r;
    std::memcpy(r.v, p, sizeof(r.v));
    return r;
  }
  static V load(const std::uint16_t* p) {
    V r;
    for (std::size_t i = 0; i < W; ++i) r.v[i] = half_to_float(p[i]);
    return r;
  }
  static V load_tail(const float* p, std::size_t count) {
    V r{};
    std::memcpy(r.v, p, count * sizeof(float));
    return r;
  }
  static V load_tail(const std::uint16_t* p, std::size_t count) {
    V r{};
    for (std::size_t i = 0; i < count; ++i) r.v[i] = half_to_float(p[i]);
    return r;
  }
  static V broadcast(float x) {
    V r;
    for (std::size_t i = 0; i < W; ++i) r.v[i] = x;
    return r;
  }
  static void store(float* p, V a) { std::memcpy(p, a.v, sizeof(a.v)); }
  // Per lane: a < b ? x : y.
  static V select_less(V a, V b, V x, V y) {
    for (std::size_t i = 0; i < W; ++i) y.v[i] = a.v[i] < b.v[i] ? x.v[i] : y.v[i];
    return y;
  }
  static V add(V a, V b) {
    for (std::size_t i = 0; i < W; ++i) a.v[i] += b.v[i];
    return a;
  }
  static V fmadd(V a, V b, V c) {
    for (std::size_t i = 0; i < W; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static V sub(V a, V b) {
    for (std::size_t i = 0; i < W; ++i) a.v[i] -= b.v[i];
    return a;
  }
  static float hsum(V a) {
    return ((a.v[0] + a.v[1]) + (a.v[2] + a.v[3])) + ((a.v[4] + a.v[5]) + (a.v[6] + a.v[7]));
  }
  static void hsum4(V a, V b, V c, V d, float* out) {
    out[0] = hsum(a), out[1] = hsum(b), out[2] = hsum(c), out[3] = hsum(d);
  }
};

struct Int8Lanes {
  static constexpr std::size_t W = 16;
  struct V {
    std::int32_t v[W];
  };
  using Acc = V;
  static V zero() { return V{}; }
  static V load(const std::int8_t* p) { return load_tail(p, W); }
  static V load_tail(const std::int8_t* p, std::size_t count) {
    V r{};
    for (std::size_t i = 0; i < count; ++i) r.v[i] = p[i];
    return r;
  }
  static Acc dot(Acc acc, V q, V x) {
    for (std::size_t i = 0; i < W; ++i) acc.v[i] += q.v[i] * x.v[i];
    return acc;
  }
  static Acc l2(Acc acc, V q, V x) {
    for (std::size_t i = 0; i < W; ++i) {
      const std::int32_t diff = q.v[i] - x.v[i];
      acc.v[i] += diff * diff;
    }
    return acc;
  }
  static std::int32_t hsum(Acc acc) {
    std::int32_t sum = 0;
    for (std::size_t i = 0; i < W; ++i) sum += acc.v[i];
    return sum;
  }
};

struct Blocking {
  static constexpr int kDotQueries = 2, kDotVectors = 2;
  static constexpr int kL2Queries = 2, kL2Vectors = 2;
  // A lone query against cached rows: 4 rows at once (see tile()).
  static constexpr int kSingleQueryVectors = 4;
};

#include "kernels/tile_generic.h"

constexpr KernelTable kTable = make_table("portable");

}  // namespace portable

const KernelTable* portable_kernels() { return &portable::kTable; }

}  // namespace vecdb
