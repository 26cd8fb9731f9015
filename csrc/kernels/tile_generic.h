// The kernel algorithm, written once over a SIMD "lanes" vocabulary.
//
// Included by each per-ISA translation unit *inside its own namespace* and
// after that unit has defined:
//   struct FloatLanes  float lanes: V, W, zero, load(float*), load(uint16_t*),
//                      load_tail(p, count) for both, broadcast(float),
//                      store(float*, V), fmadd, add, sub, select_less(a, b,
//                      x, y) (per lane a < b ? x : y), hsum, and hsum4 (four
//                      hsums at once, each summed in hsum's order)
//   struct Int8Lanes   int8 widened to int16: V, Acc, W, zero, load,
//                      load_tail, dot, l2, hsum
//   struct Blocking    register-block shapes (queries x vectors per micro-tile)
// so the portable, AVX2 and AVX-512 kernels share one algorithm and differ only
// in primitives; testing one level exercises the algorithm of all.
//
// Deliberately includes no headers: standard headers are included by the ISA
// unit before it switches the compiler's target, so no std inline function is
// ever emitted with AVX-512 instructions (the linker could pick that copy).

template <class QElem, class XElem>
struct FloatFamily {
  using QT = QElem;
  using XT = XElem;
  using V = FloatLanes::V;
  using Acc = FloatLanes::V;
  static constexpr std::size_t W = FloatLanes::W;
  static Acc zero() { return FloatLanes::zero(); }
  static V load_q(const QT* p) { return FloatLanes::load(p); }
  static V load_x(const XT* p) { return FloatLanes::load(p); }
  static V load_q_tail(const QT* p, std::size_t c) { return FloatLanes::load_tail(p, c); }
  static V load_x_tail(const XT* p, std::size_t c) { return FloatLanes::load_tail(p, c); }
  template <Reduction R>
  static Acc step(Acc acc, V q, V x) {
    if (R == Reduction::Dot) return FloatLanes::fmadd(q, x, acc);
    const V diff = FloatLanes::sub(q, x);
    return FloatLanes::fmadd(diff, diff, acc);
  }
  static float finish(Acc acc) { return FloatLanes::hsum(acc); }
  static void finish4(Acc a, Acc b, Acc c, Acc d, float* out) { FloatLanes::hsum4(a, b, c, d, out); }
};

struct Int8Family {
  using QT = std::int8_t;
  using XT = std::int8_t;
  using V = Int8Lanes::V;
  using Acc = Int8Lanes::Acc;
  static constexpr std::size_t W = Int8Lanes::W;
  static Acc zero() { return Int8Lanes::zero(); }
  static V load_q(const QT* p) { return Int8Lanes::load(p); }
  static V load_x(const XT* p) { return Int8Lanes::load(p); }
  static V load_q_tail(const QT* p, std::size_t c) { return Int8Lanes::load_tail(p, c); }
  static V load_x_tail(const XT* p, std::size_t c) { return Int8Lanes::load_tail(p, c); }
  template <Reduction R>
  static Acc step(Acc acc, V q, V x) {
    return R == Reduction::Dot ? Int8Lanes::dot(acc, q, x) : Int8Lanes::l2(acc, q, x);
  }
  static float finish(Acc acc) { return static_cast<float>(Int8Lanes::hsum(acc)); }
  static void finish4(Acc a, Acc b, Acc c, Acc d, float* out) {
    out[0] = finish(a), out[1] = finish(b), out[2] = finish(c), out[3] = finish(d);
  }
};

// QB queries x VB vectors, all accumulators in registers. Each pair gets one
// accumulator fed W lanes at a time, then the masked tail, then a horizontal
// sum: the same order for every block shape.
template <class Fam, Reduction R, int QB, int VB>
inline void micro_tile(const typename Fam::QT* const* q, const typename Fam::XT* const* x,
                       std::size_t d, float* out, std::size_t out_stride) {
  typename Fam::Acc acc[QB][VB];
  for (int a = 0; a < QB; ++a)
    for (int b = 0; b < VB; ++b) acc[a][b] = Fam::zero();
  std::size_t j = 0;
  for (; j + Fam::W <= d; j += Fam::W) {
    typename Fam::V xv[VB];
    for (int b = 0; b < VB; ++b) xv[b] = Fam::load_x(x[b] + j);
    for (int a = 0; a < QB; ++a) {
      const typename Fam::V qv = Fam::load_q(q[a] + j);
      for (int b = 0; b < VB; ++b) acc[a][b] = Fam::template step<R>(acc[a][b], qv, xv[b]);
    }
  }
  if (j < d) {
    const std::size_t rest = d - j;
    typename Fam::V xv[VB];
    for (int b = 0; b < VB; ++b) xv[b] = Fam::load_x_tail(x[b] + j, rest);
    for (int a = 0; a < QB; ++a) {
      const typename Fam::V qv = Fam::load_q_tail(q[a] + j, rest);
      for (int b = 0; b < VB; ++b) acc[a][b] = Fam::template step<R>(acc[a][b], qv, xv[b]);
    }
  }
  if constexpr (QB == 4) {
    // Four horizontal sums at once (same per-accumulator tree as finish()).
    for (int b = 0; b < VB; ++b) {
      float sums[4];
      Fam::finish4(acc[0][b], acc[1][b], acc[2][b], acc[3][b], sums);
      for (int a = 0; a < 4; ++a) out[a * out_stride + b] = sums[a];
    }
  } else {
    for (int a = 0; a < QB; ++a)
      for (int b = 0; b < VB; ++b) out[a * out_stride + b] = Fam::finish(acc[a][b]);
  }
}

// Rows streamed from DRAM: the hardware prefetcher is helped along by
// fetching the rows two steps ahead.
template <class T>
inline void prefetch_rows(const T* p, std::size_t count) {
  const char* bytes = reinterpret_cast<const char*>(p);
  for (std::size_t offset = 0; offset < count * sizeof(T); offset += 64)
    __builtin_prefetch(bytes + offset, 0, 3);
}

// QB query rows against all n vectors, VB vectors at a time.
template <class Fam, Reduction R, int QB, int VB, bool Prefetch>
inline void query_rows(const typename Fam::QT* Q, const typename Fam::XT* X, std::size_t n,
                       std::size_t d, float* out) {
  const typename Fam::QT* q[QB];
  for (int a = 0; a < QB; ++a) q[a] = Q + a * d;
  std::size_t j = 0;
  for (; j + VB <= n; j += VB) {
    const typename Fam::XT* x[VB];
    for (int b = 0; b < VB; ++b) x[b] = X + (j + b) * d;
    if (Prefetch && j + 2 * VB < n) prefetch_rows(X + (j + 2 * VB) * d, VB * d);
    micro_tile<Fam, R, QB, VB>(q, x, d, out + j, n);
  }
  for (; j < n; ++j) {
    const typename Fam::XT* x[1] = {X + j * d};
    micro_tile<Fam, R, QB, 1>(q, x, d, out + j, n);
  }
}

// out[i * n + j] = reduce(Q[i], X[j]). Callers keep X small enough to stay in
// L2 while every group of QB queries streams over it.
//
// Leftover single query rows run one of two ways. Rows in cache: four rows
// at once, four independent FMA chains (~2.7x faster than one chain).
// Streaming (rows coming from DRAM): one row after another with a software
// prefetch two rows ahead, which keeps the access one sequential stream and
// measured ~35% faster than four interleaved rows. Both accumulate every
// pair in the same order, so they return identical bits.
template <class Fam, Reduction R, bool Streaming>
void tile(const typename Fam::QT* Q, std::size_t m, const typename Fam::XT* X, std::size_t n,
          std::size_t d, float* out) {
  constexpr int QB = R == Reduction::Dot ? Blocking::kDotQueries : Blocking::kL2Queries;
  constexpr int VB = R == Reduction::Dot ? Blocking::kDotVectors : Blocking::kL2Vectors;
  constexpr int single_vectors = Streaming ? 1 : Blocking::kSingleQueryVectors;
  std::size_t i = 0;
  for (; i + QB <= m; i += QB) query_rows<Fam, R, QB, VB, false>(Q + i * d, X, n, d, out + i * n);
  for (; i < m; ++i)
    query_rows<Fam, R, 1, single_vectors, Streaming>(Q + i * d, X, n, d, out + i * n);
}

// One pair with four accumulators: about 3x shorter dependency chains than
// pair(), for graph search, where a distance is needed at once and only
// approximate ranking matters. Rounds differently from the tiles (the
// exact-search paths never use it).
template <class Fam, Reduction R>
float pair_fast(const typename Fam::QT* a, const typename Fam::XT* b, std::size_t d) {
  constexpr std::size_t W = Fam::W;
  typename Fam::Acc acc[4] = {Fam::zero(), Fam::zero(), Fam::zero(), Fam::zero()};
  std::size_t j = 0;
  for (; j + 4 * W <= d; j += 4 * W) {
    for (std::size_t u = 0; u < 4; ++u)
      acc[u] = Fam::template step<R>(acc[u], Fam::load_q(a + j + u * W), Fam::load_x(b + j + u * W));
  }
  for (; j + W <= d; j += W) acc[0] = Fam::template step<R>(acc[0], Fam::load_q(a + j), Fam::load_x(b + j));
  if (j < d) acc[1] = Fam::template step<R>(acc[1], Fam::load_q_tail(a + j, d - j), Fam::load_x_tail(b + j, d - j));
  float sums[4];
  Fam::finish4(acc[0], acc[1], acc[2], acc[3], sums);
  return (sums[0] + sums[1]) + (sums[2] + sums[3]);
}

// One query against four rows at once, two accumulators per row: eight
// independent FMA chains and four memory streams in flight, for the graph's
// neighbour lists (rounded like pair_fast up to the final additions).
template <class Fam, Reduction R>
void pair4_fast(const typename Fam::QT* q, const typename Fam::XT* const* x, std::size_t d, float* out) {
  constexpr std::size_t W = Fam::W;
  typename Fam::Acc even[4] = {Fam::zero(), Fam::zero(), Fam::zero(), Fam::zero()};
  typename Fam::Acc odd[4] = {Fam::zero(), Fam::zero(), Fam::zero(), Fam::zero()};
  std::size_t j = 0;
  for (; j + 2 * W <= d; j += 2 * W) {
    const typename Fam::V q0 = Fam::load_q(q + j);
    const typename Fam::V q1 = Fam::load_q(q + j + W);
    for (int b = 0; b < 4; ++b) {
      even[b] = Fam::template step<R>(even[b], q0, Fam::load_x(x[b] + j));
      odd[b] = Fam::template step<R>(odd[b], q1, Fam::load_x(x[b] + j + W));
    }
  }
  if (j + W <= d) {
    const typename Fam::V q0 = Fam::load_q(q + j);
    for (int b = 0; b < 4; ++b) even[b] = Fam::template step<R>(even[b], q0, Fam::load_x(x[b] + j));
    j += W;
  }
  if (j < d) {
    const typename Fam::V q1 = Fam::load_q_tail(q + j, d - j);
    for (int b = 0; b < 4; ++b) odd[b] = Fam::template step<R>(odd[b], q1, Fam::load_x_tail(x[b] + j, d - j));
  }
  float even_sums[4], odd_sums[4];
  Fam::finish4(even[0], even[1], even[2], even[3], even_sums);
  Fam::finish4(odd[0], odd[1], odd[2], odd[3], odd_sums);
  for (int b = 0; b < 4; ++b) out[b] = even_sums[b] + odd_sums[b];
}

// out[i * k + c] = bias[c] + sum_j x[i * d + j] * ct[j * k + c] for k a
// multiple of W: short rows against columns stored transposed (d x k), so
// each step is one broadcast and one FMA per W columns with no horizontal
// sums. PQ's centroid searches (sub-vectors of a few dimensions against 256
// centroids) take this form.
inline void transposed_scores(const float* x, std::size_t n, std::size_t d, const float* ct, const float* bias,
                              std::size_t k, float* out) {
  constexpr std::size_t W = FloatLanes::W;
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = x + i * d;
    float* scores = out + i * k;
    std::size_t c = 0;
    for (; c + 4 * W <= k; c += 4 * W) {
      FloatLanes::V a0 = FloatLanes::load(bias + c), a1 = FloatLanes::load(bias + c + W);
      FloatLanes::V a2 = FloatLanes::load(bias + c + 2 * W), a3 = FloatLanes::load(bias + c + 3 * W);
      for (std::size_t j = 0; j < d; ++j) {
        const FloatLanes::V xj = FloatLanes::broadcast(row[j]);
        const float* column = ct + j * k + c;
        a0 = FloatLanes::fmadd(xj, FloatLanes::load(column), a0);
        a1 = FloatLanes::fmadd(xj, FloatLanes::load(column + W), a1);
        a2 = FloatLanes::fmadd(xj, FloatLanes::load(column + 2 * W), a2);
        a3 = FloatLanes::fmadd(xj, FloatLanes::load(column + 3 * W), a3);
      }
      FloatLanes::store(scores + c, a0), FloatLanes::store(scores + c + W, a1);
      FloatLanes::store(scores + c + 2 * W, a2), FloatLanes::store(scores + c + 3 * W, a3);
    }
    for (; c < k; c += W) {
      FloatLanes::V a = FloatLanes::load(bias + c);
      for (std::size_t j = 0; j < d; ++j)
        a = FloatLanes::fmadd(FloatLanes::broadcast(row[j]), FloatLanes::load(ct + j * k + c), a);
      FloatLanes::store(scores + c, a);
    }
  }
}

// For each of n rows x (n x d), the column c < k minimizing bias[c] +
// dot(x, column c of ct) (the first on ties): transposed_scores followed by
// an argmin kept in registers (each lane tracks its best score and column).
inline void transposed_argmin(const float* x, std::size_t n, std::size_t d, const float* ct, const float* bias,
                              std::size_t k, std::uint32_t* out) {
  constexpr std::size_t W = FloatLanes::W;
  float lane_ids[W], best_scores[W], best_columns[W];
  for (std::size_t i = 0; i < W; ++i) lane_ids[i] = static_cast<float>(i);
  const FloatLanes::V lanes = FloatLanes::load(lane_ids);
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = x + i * d;
    FloatLanes::V best = FloatLanes::broadcast(__builtin_inff());
    FloatLanes::V best_column = FloatLanes::zero();
    for (std::size_t c = 0; c < k; c += 2 * W) {
      FloatLanes::V a0 = FloatLanes::load(bias + c), a1 = FloatLanes::load(bias + c + W);
      for (std::size_t j = 0; j < d; ++j) {
        const FloatLanes::V xj = FloatLanes::broadcast(row[j]);
        a0 = FloatLanes::fmadd(xj, FloatLanes::load(ct + j * k + c), a0);
        a1 = FloatLanes::fmadd(xj, FloatLanes::load(ct + j * k + c + W), a1);
      }
      const FloatLanes::V c0 = FloatLanes::add(lanes, FloatLanes::broadcast(static_cast<float>(c)));
      const FloatLanes::V c1 = FloatLanes::add(lanes, FloatLanes::broadcast(static_cast<float>(c + W)));
      best_column = FloatLanes::select_less(a0, best, c0, best_column);
      best = FloatLanes::select_less(a0, best, a0, best);
      best_column = FloatLanes::select_less(a1, best, c1, best_column);
      best = FloatLanes::select_less(a1, best, a1, best);
    }
    FloatLanes::store(best_scores, best);
    FloatLanes::store(best_columns, best_column);
    std::size_t winner = 0;
    for (std::size_t l = 1; l < W; ++l)
      if (best_scores[l] < best_scores[winner] ||
          (best_scores[l] == best_scores[winner] && best_columns[l] < best_columns[winner]))
        winner = l;
    out[i] = static_cast<std::uint32_t>(best_columns[winner]);
  }
}

constexpr KernelTable make_table(const char* name) {
  using F32 = FloatFamily<float, float>;
  using F16 = FloatFamily<float, std::uint16_t>;
  return KernelTable{
      name,
      {{&tile<F32, Reduction::Dot, false>, &tile<F32, Reduction::L2, false>},
       {&tile<F32, Reduction::Dot, true>, &tile<F32, Reduction::L2, true>}},
      {{&tile<F16, Reduction::Dot, false>, &tile<F16, Reduction::L2, false>},
       {&tile<F16, Reduction::Dot, true>, &tile<F16, Reduction::L2, true>}},
      {{&tile<Int8Family, Reduction::Dot, false>, &tile<Int8Family, Reduction::L2, false>},
       {&tile<Int8Family, Reduction::Dot, true>, &tile<Int8Family, Reduction::L2, true>}},
      {&pair_fast<F32, Reduction::Dot>, &pair_fast<F32, Reduction::L2>},
      {&pair_fast<F16, Reduction::Dot>, &pair_fast<F16, Reduction::L2>},
      {&pair4_fast<F32, Reduction::Dot>, &pair4_fast<F32, Reduction::L2>},
      {&pair4_fast<F16, Reduction::Dot>, &pair4_fast<F16, Reduction::L2>},
      &transposed_scores,
      &transposed_argmin,
  };
}
