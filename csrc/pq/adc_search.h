// Exhaustive search over PQ codes with asymmetric distances: per query one
// lookup table, then a scan of every code row that is table lookups and
// adds only (four rows interleaved so their loads overlap).
#pragma once

#include <cstddef>
#include <cstdint>

#include "pq/product_quantizer.h"

namespace vecdb {

// The k code rows (of n, each pq.m() bytes) nearest to each of nq raw
// queries by ADC distance, optionally only rows whose bit is set in
// `allowed` (allowed_bits bits over rows; rows at or past it are not
// allowed). Writes row indices and distances (nq x k, closest first, ties to
// the lower row), padded with -1 / +inf.
void adc_search(const ProductQuantizer& pq, const float* queries, std::size_t nq, const std::uint8_t* codes,
                std::size_t n, std::size_t k, const std::uint64_t* allowed, std::uint64_t allowed_bits,
                std::size_t n_threads, std::int64_t* ids, float* distances);

}  // namespace vecdb
