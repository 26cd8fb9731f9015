#include "flat/flat_search.h"

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"
#include "flat/distances.h"
#include "kernels/kernels.h"
#include "kernels/topk.h"

namespace vecdb {
namespace {

// Queries per scan task. Every task streams the whole base once, so large
// chunks save memory bandwidth; the queries of a chunk (and their heaps)
// stay in L2/L3 while base blocks pass through.
constexpr std::size_t kMinQueryChunk = 32;
constexpr std::size_t kMaxQueryChunk = 256;

// The candidate rows of one scan task: a contiguous range [begin, end) of the
// base, or (for a selective filter) the slice [begin, end) of gathered ids.
struct Candidates {
  std::size_t begin = 0, end = 0;
  const std::int64_t* ids = nullptr;
};

// Offers one block of raw reductions (qc x xc) to the heaps. Most candidates
// lose to the current k-th best, so the test against the threshold comes
// first and the heap is touched rarely. NaN distances (finite inputs that
// overflow) fail the comparison and are never returned.
template <Metric M, bool Filtered>
void offer_block(const float* raw, std::size_t qc, std::size_t xc, std::size_t q0,
                 std::size_t x0, const VectorsView& base, const VectorsView& queries,
                 const std::uint64_t* allowed, TopK* heaps) {
  for (std::size_t a = 0; a < qc; ++a) {
    TopK& heap = heaps[a];
    const float* row = raw + a * xc;
    const float q_inv = M == Metric::Cosine ? queries.inv_norms[q0 + a] : 0.0f;
    float threshold = heap.threshold();
    for (std::size_t b = 0; b < xc; ++b) {
      const float x_inv = M == Metric::Cosine ? base.inv_norms[x0 + b] : 0.0f;
      const float distance = finish_distance(M, row[b], q_inv, x_inv);
      if (!(distance <= threshold)) continue;
      if (Filtered && !bit_is_set(allowed, x0 + b)) continue;
      heap.push(distance, static_cast<std::int64_t>(x0 + b));
      threshold = heap.threshold();
    }
  }
}

using OfferFn = void (*)(const float*, std::size_t, std::size_t, std::size_t, std::size_t,
                         const VectorsView&, const VectorsView&, const std::uint64_t*, TopK*);

template <Metric M>
OfferFn offer_for(bool filtered) {
  return filtered ? &offer_block<M, true> : &offer_block<M, false>;
}

OfferFn select_offer(Metric metric, bool filtered) {
  switch (metric) {
    case Metric::L2: return offer_for<Metric::L2>(filtered);
    case Metric::IP: return offer_for<Metric::IP>(filtered);
    case Metric::Cosine: return offer_for<Metric::Cosine>(filtered);
  }
  return nullptr;
}

class Scanner {
 public:
  Scanner(const VectorsView& base, const VectorsView& queries, const FlatSearchParams& params)
      : base_(base),
        queries_(queries),
        params_(params),
        kernels_(vecdb::kernels()),
        reduction_(reduction_for(params.metric)),
        streaming_(streams_from_memory(base, queries.n)),
        block_(rows_per_block(base)),
        offer_dense_(select_offer(params.metric, params.allowed != nullptr)),
        offer_gathered_(select_offer(params.metric, false)) {}

  // Pushes the distances of queries [q0, q0 + heaps.size()) to the
  // candidates into heaps.
  void scan(std::size_t q0, const Candidates& rows, std::vector<TopK>& heaps) const {
    const std::size_t qc = heaps.size();
    std::vector<float> raw(qc * block_);
    if (rows.ids == nullptr) {
      for (std::size_t x0 = rows.begin; x0 < rows.end; x0 += block_) {
        const std::size_t xc = std::min(block_, rows.end - x0);
        raw_block(kernels_, reduction_, streaming_, base_, queries_, q0, qc, x0, xc, raw.data());
        offer_dense_(raw.data(), qc, xc, q0, x0, base_, queries_, params_.allowed, heaps.data());
      }
      return;
    }
    // Selective filter: allowed rows one by one, every query of the chunk
    // against each.
    for (std::size_t i = rows.begin; i < rows.end; ++i) {
      const std::size_t x = static_cast<std::size_t>(rows.ids[i]);
      raw_block(kernels_, reduction_, false, base_, queries_, q0, qc, x, 1, raw.data());
      offer_gathered_(raw.data(), qc, 1, q0, x, base_, queries_, nullptr, heaps.data());
    }
  }

 private:
  const VectorsView& base_;
  const VectorsView& queries_;
  const FlatSearchParams& params_;
  const KernelTable& kernels_;
  Reduction reduction_;
  bool streaming_;
  std::size_t block_;
  OfferFn offer_dense_;
  OfferFn offer_gathered_;
};

std::vector<TopK> make_heaps(std::size_t count, std::size_t k) {
  return std::vector<TopK>(count, TopK(k));
}

}  // namespace

void flat_search(const VectorsView& base_rows, const VectorsView& query_rows,
                 const FlatSearchParams& params, std::int64_t* ids, float* distances) {
  check_query_type(base_rows, query_rows);
  const std::size_t m = query_rows.n, k = params.k;
  if (m == 0) return;
  std::vector<float> base_norms, query_norms;
  const bool cosine = params.metric == Metric::Cosine;
  const VectorsView base =
      cosine ? with_inv_norms(base_rows, base_norms, params.n_threads) : base_rows;
  const VectorsView queries =
      cosine ? with_inv_norms(query_rows, query_norms, params.n_threads) : query_rows;

  // A selective filter scans only the allowed rows, gathered once.
  std::vector<std::int64_t> allowed_ids;
  std::size_t n_candidates = base.n;
  bool gathered = false;
  if (params.allowed) {
    std::size_t count = 0;
    for (std::size_t w = 0; w < (base.n + 63) / 64; ++w)
      count += static_cast<std::size_t>(__builtin_popcountll(params.allowed[w]));
    if (count * 4 < base.n) {
      allowed_ids.reserve(count);
      for (std::size_t x = 0; x < base.n; ++x)
        if (bit_is_set(params.allowed, x)) allowed_ids.push_back(static_cast<std::int64_t>(x));
      n_candidates = count;
      gathered = true;
    }
  }
  auto candidates = [&](std::size_t begin, std::size_t end) {
    return Candidates{begin, end, gathered ? allowed_ids.data() : nullptr};
  };

  const Scanner scanner(base, queries, params);
  const std::size_t work = m * n_candidates * base.dim;
  const std::size_t threads = work > (1u << 20) ? std::max<std::size_t>(1, params.n_threads) : 1;

  if (m >= 2 * threads) {
    // Enough queries: each task owns a chunk of queries and scans everything.
    const std::size_t per_thread = (m + threads - 1) / threads;
    const std::size_t chunk = std::clamp(per_thread, kMinQueryChunk, kMaxQueryChunk);
    const std::size_t n_chunks = (m + chunk - 1) / chunk;
    parallel_for(n_chunks, threads, [&](std::size_t c, std::size_t) {
      const std::size_t q0 = c * chunk;
      std::vector<TopK> heaps = make_heaps(std::min(chunk, m - q0), k);
      scanner.scan(q0, candidates(0, n_candidates), heaps);
      for (std::size_t a = 0; a < heaps.size(); ++a)
        heaps[a].write_sorted(k, ids + (q0 + a) * k, distances + (q0 + a) * k);
    });
    return;
  }

  // Few queries: split the candidates, keep heaps per worker, merge.
  const std::size_t n_slices = threads * 4;
  const std::size_t slice = (n_candidates + n_slices - 1) / n_slices;
  std::vector<std::vector<TopK>> per_worker(threads, make_heaps(m, k));
  parallel_for(n_slices, threads, [&](std::size_t s, std::size_t worker) {
    const std::size_t begin = std::min(n_candidates, s * slice);
    const std::size_t end = std::min(n_candidates, begin + slice);
    if (begin < end) scanner.scan(0, candidates(begin, end), per_worker[worker]);
  });
  for (std::size_t q = 0; q < m; ++q) {
    for (std::size_t w = 1; w < threads; ++w) per_worker[0][q].merge(per_worker[w][q]);
    per_worker[0][q].write_sorted(k, ids + q * k, distances + q * k);
  }
}

}  // namespace vecdb
