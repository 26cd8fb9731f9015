#include "pq/adc_search.h"

#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "kernels/topk.h"

namespace vecdb {
namespace {

constexpr std::size_t kC = ProductQuantizer::kCentroids;

bool row_allowed(const std::uint64_t* allowed, std::uint64_t bits, std::size_t row) {
  return !allowed || (row < bits && ((allowed[row >> 6] >> (row & 63)) & 1u));
}

// Distances of rows [start, start + count) into out.
void scan_rows(const float* table, std::size_t m, const std::uint8_t* codes, std::size_t start, std::size_t count,
               float bias, float* out) {
  std::size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    const std::uint8_t* row = codes + (start + i) * m;
    const std::uint8_t* four[4] = {row, row + m, row + 2 * m, row + 3 * m};
    adc_distance4(table, m, four, bias, out + i);
  }
  for (; i < count; ++i) out[i] = adc_distance(table, m, codes + (start + i) * m, bias);
}

}  // namespace

void adc_search(const ProductQuantizer& pq, const float* queries, std::size_t nq, const std::uint8_t* codes,
                std::size_t n, std::size_t k, const std::uint64_t* allowed, std::uint64_t allowed_bits,
                std::size_t n_threads, std::int64_t* ids, float* distances) {
  const std::size_t m = pq.m(), dim = pq.dim();
  const float bias = pq.table_bias();
  constexpr std::size_t kBlock = 1024;  // rows scored before their top-k pass
  parallel_for(nq, n_threads, [&](std::size_t q, std::size_t) {
    std::vector<float> prepared(dim), table(m * kC), scored(kBlock);
    pq.prepare_query(queries + q * dim, prepared.data());
    pq.lookup_table(prepared.data(), table.data());
    TopK best(k);
    for (std::size_t start = 0; start < n; start += kBlock) {
      const std::size_t count = std::min(kBlock, n - start);
      scan_rows(table.data(), m, codes, start, count, bias, scored.data());
      // Rows are scanned in order, so a row tying the worst kept one loses
      // (the smaller row wins ties); until k are kept every row enters, even
      // at +inf or NaN (TopK ranks NaN as +inf).
      float threshold = best.threshold();
      for (std::size_t i = 0; i < count; ++i) {
        if ((scored[i] < threshold || best.size() < k) && row_allowed(allowed, allowed_bits, start + i)) {
          best.push(scored[i], static_cast<std::int64_t>(start + i));
          threshold = best.threshold();
        }
      }
    }
    best.write_sorted(k, ids + q * k, distances + q * k);
  });
}

}  // namespace vecdb
