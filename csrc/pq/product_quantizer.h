// Product quantization (Jegou, Douze & Schmid, 2011): a vector is cut into m
// equal sub-vectors and each is replaced by the index of its nearest of 256
// centroids learned for that subspace, so a 384-d float vector (1,536 bytes)
// becomes m one-byte codes.
//
// Distances from a query to coded vectors are asymmetric (ADC): the query
// stays exact; a lookup table of m x 256 sub-distances is built once per
// query, and a coded vector's distance is bias + the sum of m table
// entries. For L2 the entries are squared sub-distances (bias 0); for ip and
// cosine they are negated sub-dot products (bias 1, so the result is
// 1 - dot as everywhere else in vecdb). Cosine vectors are normalized before
// training and encoding, and queries before their tables are built.
//
// An optional rotation R (OPQ, Ge et al. 2013: learned so that sub-vectors
// quantize better) is applied after normalizing: every vector x is coded as
// x R. Rotations keep distances, so ADC tables are built from the rotated
// query and codes compare with each other in the rotated space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/bytes.h"
#include "common/types.h"
#include "pq/kmeans.h"

namespace vecdb {

struct PqTrainParams {
  std::size_t iterations = 20;        // Lloyd iterations per subspace
  std::size_t max_samples = 65536;    // training uses a random sample of at most this many rows
  std::uint64_t seed = 0;
  std::size_t n_threads = 1;          // subspaces are trained in parallel
};

class ProductQuantizer {
 public:
  static constexpr std::size_t kCentroids = 256;  // 8-bit codes

  // dim must be a multiple of m (the error names the divisors that work).
  ProductQuantizer(std::size_t dim, std::size_t m, Metric metric);

  std::size_t dim() const { return dim_; }
  std::size_t m() const { return m_; }
  std::size_t sub_dim() const { return dim_ / m_; }
  Metric metric() const { return metric_; }
  bool trained() const { return !centroids_.empty(); }
  // Throws vecdb::Error unless trained.
  void require_trained() const;
  // Centroids, m x 256 x sub_dim (empty until trained).
  const std::vector<float>& centroids() const { return centroids_; }
  // The rotation R (dim x dim, row-major; empty: none).
  const std::vector<float>& rotation() const { return rotation_; }
  // Sets R (dim x dim, row-major, orthonormal) or clears it (nullptr). The
  // codebooks no longer match: train again.
  void set_rotation(const float* rotation);

  // Learns the codebooks from n rows (raw vectors; at least 256), in the
  // space of the current rotation.
  void train(const float* rows, std::size_t n, const PqTrainParams& params);

  // Codes (n x m bytes) of n raw rows.
  void encode(const float* rows, std::size_t n, std::uint8_t* codes, std::size_t n_threads) const;
  // One row already prepared by prepare_query().
  void encode_prepared(const float* prepared, std::uint8_t* code) const;
  // The vectors n codes stand for (n x dim; unit-ish for cosine), in the
  // caller's space (rotated back).
  void decode(const std::uint8_t* codes, std::size_t n, float* out) const;
  // The same in the rotated space the codes live in (no rotation back):
  // what distances between two codes are computed from.
  void decode_rotated(const std::uint8_t* codes, std::size_t n, float* out) const;

  // A query as tables are built from it (normalized for cosine, rotated).
  void prepare_query(const float* query, float* out) const;
  // ADC lookup table (m x 256) of a prepared query; distance = bias + sum.
  void lookup_table(const float* prepared, float* table) const;
  float table_bias() const { return metric_ == Metric::L2 ? 0.0f : 1.0f; }

  // Codebooks in a versioned, checksummed format.
  void save(Sink& sink) const;
  static std::unique_ptr<ProductQuantizer> load(Source& source);
  // The same, inside a larger stream (the HNSW index file).
  void write(ByteWriter& out) const;
  static std::unique_ptr<ProductQuantizer> read(ByteReader& in, const std::string& what);

 private:
  void set_centroids(std::vector<float> centroids);

  std::size_t dim_;
  std::size_t m_;
  Metric metric_;
  std::vector<float> centroids_;
  std::vector<float> rotation_;             // R, dim x dim
  std::vector<float> rotation_t_;           // R transposed: row j is column j of R
  std::vector<CentroidColumns> columns_;  // per subspace, derived from centroids_
};

// bias + sum_j table[j][code[j]]: the ADC distance of one coded vector.
inline float adc_distance(const float* table, std::size_t m, const std::uint8_t* code, float bias) {
  float sum = bias;
  for (std::size_t j = 0; j < m; ++j) sum += table[j * ProductQuantizer::kCentroids + code[j]];
  return sum;
}

// The same for four codes at once: four independent sums keep four lookups
// in flight.
inline void adc_distance4(const float* table, std::size_t m, const std::uint8_t* const codes[4], float bias,
                          float* out) {
  float a0 = bias, a1 = bias, a2 = bias, a3 = bias;
  for (std::size_t j = 0; j < m; ++j) {
    const float* t = table + j * ProductQuantizer::kCentroids;
    a0 += t[codes[0][j]];
    a1 += t[codes[1][j]];
    a2 += t[codes[2][j]];
    a3 += t[codes[3][j]];
  }
  out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
}

}  // namespace vecdb
