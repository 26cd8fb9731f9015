#include "pq/product_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/kernels.h"
#include "pq/kmeans.h"

namespace vecdb {
namespace {

// Codebook file layout, version 1 (little-endian):
//   magic "VECDBPQ1", u32 version, u32 metric, u64 dim, u64 m, u64 centroids
//   per subspace (256), u32 flags (bit 0: a rotation follows), u32 reserved
//   (0), float32 rotation (dim x dim, if flagged), float32 centroids
//   (m x 256 x dim / m), u64 checksum of every byte before it (standalone
//   files only).
constexpr char kMagic[8] = {'V', 'E', 'C', 'D', 'B', 'P', 'Q', '1'};
constexpr std::uint32_t kFormatVersion = 1;

std::string divisors_hint(std::size_t dim) {
  std::string hint;
  for (std::size_t m = 1; m <= dim && m <= 256; ++m)
    if (dim % m == 0) hint += (hint.empty() ? "" : ", ") + std::to_string(m);
  return hint;
}

void normalize(float* v, std::size_t dim) {
  double squared = 0.0;
  for (std::size_t i = 0; i < dim; ++i) squared += static_cast<double>(v[i]) * v[i];
  if (squared > 0.0) {
    const float inv = static_cast<float>(1.0 / std::sqrt(squared));
    for (std::size_t i = 0; i < dim; ++i) v[i] *= inv;
  }
}

}  // namespace

ProductQuantizer::ProductQuantizer(std::size_t dim, std::size_t m, Metric metric)
    : dim_(dim), m_(m), metric_(metric) {
  VECDB_REQUIRE(dim >= 1 && dim <= kMaxDim, "dimension must be between 1 and " + std::to_string(kMaxDim));
  VECDB_REQUIRE(m >= 1 && m <= dim, "m (sub-vectors) must be between 1 and the dimension " + std::to_string(dim) +
                                        ", got " + std::to_string(m));
  VECDB_REQUIRE(dim % m == 0, "m = " + std::to_string(m) + " does not divide the dimension " + std::to_string(dim) +
                                  " into equal sub-vectors; m can be one of " + divisors_hint(dim));
}

void ProductQuantizer::require_trained() const {
  VECDB_REQUIRE(trained(), "the product quantizer is not trained yet: call train() first");
}

void ProductQuantizer::prepare_query(const float* query, float* out) const {
  std::memcpy(out, query, dim_ * sizeof(float));
  if (metric_ == Metric::Cosine) normalize(out, dim_);
  if (!rotation_.empty()) {
    // out = x R: one dot product per column of R (a row of R transposed).
    std::vector<float> x(out, out + dim_);
    kernels().f32[0][static_cast<int>(Reduction::Dot)](x.data(), 1, rotation_t_.data(), dim_, dim_, out);
  }
}

void ProductQuantizer::set_rotation(const float* rotation) {
  if (rotation == nullptr) {
    rotation_.clear();
    rotation_t_.clear();
    return;
  }
  for (std::size_t i = 0; i < dim_ * dim_; ++i)
    VECDB_REQUIRE(std::isfinite(rotation[i]), "the rotation contains NaN or infinity");
  rotation_.assign(rotation, rotation + dim_ * dim_);
  rotation_t_.resize(dim_ * dim_);
  for (std::size_t i = 0; i < dim_; ++i)
    for (std::size_t j = 0; j < dim_; ++j) rotation_t_[j * dim_ + i] = rotation_[i * dim_ + j];
}

void ProductQuantizer::train(const float* rows, std::size_t n, const PqTrainParams& params) {
  VECDB_REQUIRE(n >= kCentroids, "PQ training needs at least " + std::to_string(kCentroids) +
                                     " vectors (256 centroids per sub-vector), got " + std::to_string(n) +
                                     "; tens of thousands train well");
  VECDB_REQUIRE(params.iterations >= 1, "PQ training needs at least one iteration");
  VECDB_REQUIRE(params.max_samples >= kCentroids, "max_samples must be at least 256");
  // A deterministic sample (partial Fisher-Yates), in row order so reading
  // it walks memory forward.
  std::vector<std::size_t> picked(n);
  for (std::size_t i = 0; i < n; ++i) picked[i] = i;
  const std::size_t count = std::min(n, params.max_samples);
  if (count < n) {
    std::mt19937_64 rng(params.seed ^ 0x5051u);
    for (std::size_t i = 0; i < count; ++i)
      std::swap(picked[i], picked[std::uniform_int_distribution<std::size_t>(i, n - 1)(rng)]);
    picked.resize(count);
    std::sort(picked.begin(), picked.end());
  }
  // Prepared sample, then one contiguous count x sub_dim matrix per subspace.
  const std::size_t d = sub_dim();
  std::vector<float> subspaces(m_ * count * d);
  std::vector<float> prepared(dim_);
  for (std::size_t i = 0; i < count; ++i) {
    prepare_query(rows + picked[i] * dim_, prepared.data());
    for (std::size_t j = 0; j < m_; ++j)
      std::memcpy(subspaces.data() + (j * count + i) * d, prepared.data() + j * d, d * sizeof(float));
  }
  std::vector<float> centroids(m_ * kCentroids * d);
  parallel_for(m_, params.n_threads, [&](std::size_t j, std::size_t) {
    KMeansParams kmeans_params;
    kmeans_params.k = kCentroids;
    kmeans_params.iterations = params.iterations;
    kmeans_params.seed = params.seed + 0x9e3779b97f4a7c15ull * (j + 1);
    const std::vector<float> learned = kmeans(subspaces.data() + j * count * d, count, d, kmeans_params);
    std::copy(learned.begin(), learned.end(), centroids.begin() + j * kCentroids * d);
  });
  set_centroids(std::move(centroids));
}

void ProductQuantizer::set_centroids(std::vector<float> centroids) {
  const std::size_t d = sub_dim();
  columns_.clear();
  for (std::size_t j = 0; j < m_; ++j) columns_.emplace_back(centroids.data() + j * kCentroids * d, kCentroids, d);
  centroids_ = std::move(centroids);
}

void ProductQuantizer::encode_prepared(const float* prepared, std::uint8_t* code) const {
  const std::size_t d = sub_dim();
  std::uint32_t nearest;
  for (std::size_t j = 0; j < m_; ++j) {
    assign_nearest(prepared + j * d, 1, columns_[j], &nearest);
    code[j] = static_cast<std::uint8_t>(nearest);
  }
}

void ProductQuantizer::encode(const float* rows, std::size_t n, std::uint8_t* codes, std::size_t n_threads) const {
  require_trained();
  constexpr std::size_t kChunk = 256;
  const std::size_t d = sub_dim();
  parallel_for((n + kChunk - 1) / kChunk, n_threads, [&](std::size_t chunk, std::size_t) {
    const std::size_t start = chunk * kChunk, count = std::min(kChunk, n - start);
    // Subspace by subspace: the whole chunk against one codebook at a time,
    // with the tile kernel.
    std::vector<float> prepared(count * dim_), sub(count * d);
    std::vector<std::uint32_t> nearest(count);
    for (std::size_t i = 0; i < count; ++i) prepare_query(rows + (start + i) * dim_, prepared.data() + i * dim_);
    for (std::size_t j = 0; j < m_; ++j) {
      for (std::size_t i = 0; i < count; ++i)
        std::memcpy(sub.data() + i * d, prepared.data() + i * dim_ + j * d, d * sizeof(float));
      assign_nearest(sub.data(), count, columns_[j], nearest.data());
      for (std::size_t i = 0; i < count; ++i) codes[(start + i) * m_ + j] = static_cast<std::uint8_t>(nearest[i]);
    }
  });
}

void ProductQuantizer::decode_rotated(const std::uint8_t* codes, std::size_t n, float* out) const {
  require_trained();
  const std::size_t d = sub_dim();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < m_; ++j)
      std::memcpy(out + i * dim_ + j * d, centroids_.data() + (j * kCentroids + codes[i * m_ + j]) * d,
                  d * sizeof(float));
}

void ProductQuantizer::decode(const std::uint8_t* codes, std::size_t n, float* out) const {
  decode_rotated(codes, n, out);
  if (rotation_.empty()) return;
  // Back from the rotated space: y R^T, one dot product per row of R.
  std::vector<float> rotated(dim_);
  const auto tile = kernels().f32[0][static_cast<int>(Reduction::Dot)];
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(rotated.data(), out + i * dim_, dim_ * sizeof(float));
    tile(rotated.data(), 1, rotation_.data(), dim_, dim_, out + i * dim_);
  }
}

void ProductQuantizer::lookup_table(const float* prepared, float* table) const {
  require_trained();
  const std::size_t d = sub_dim();
  const auto scores = kernels().transposed_scores;
  // Columns hold -2c: L2 is |q|^2 + (|c|^2 + q . -2c); the negated dot
  // product is (q / 2) . -2c.
  static const std::vector<float> zeros(kCentroids, 0.0f);
  std::vector<float> half(d);
  for (std::size_t j = 0; j < m_; ++j) {
    const float* sub = prepared + j * d;
    const CentroidColumns& columns = columns_[j];
    float* out = table + j * kCentroids;
    if (metric_ == Metric::L2) {
      scores(sub, 1, d, columns.minus_two_t.data(), columns.norms.data(), kCentroids, out);
      float squared = 0.0f;
      for (std::size_t i = 0; i < d; ++i) squared += sub[i] * sub[i];
      for (std::size_t c = 0; c < kCentroids; ++c) out[c] = std::max(out[c] + squared, 0.0f);
    } else {
      for (std::size_t i = 0; i < d; ++i) half[i] = 0.5f * sub[i];
      scores(half.data(), 1, d, columns.minus_two_t.data(), zeros.data(), kCentroids, out);
    }
  }
}

void ProductQuantizer::write(ByteWriter& out) const {
  require_trained();
  out.put_bytes(kMagic, sizeof(kMagic));
  out.put<std::uint32_t>(kFormatVersion);
  out.put<std::uint32_t>(static_cast<std::uint32_t>(metric_));
  out.put<std::uint64_t>(dim_);
  out.put<std::uint64_t>(m_);
  out.put<std::uint64_t>(kCentroids);
  out.put<std::uint32_t>(rotation_.empty() ? 0u : 1u);
  out.put<std::uint32_t>(0);
  if (!rotation_.empty()) out.put_bytes(rotation_.data(), rotation_.size() * sizeof(float));
  out.put_bytes(centroids_.data(), centroids_.size() * sizeof(float));
}

std::unique_ptr<ProductQuantizer> ProductQuantizer::read(ByteReader& in, const std::string& what) {
  char magic[sizeof(kMagic)];
  VECDB_REQUIRE(in.remaining() >= sizeof(magic), what + " is too short to hold PQ codebooks");
  in.get_bytes(magic, sizeof(magic));
  VECDB_REQUIRE(std::memcmp(magic, kMagic, sizeof(kMagic)) == 0,
                what + " does not start with the vecdb PQ codebook magic bytes");
  const auto version = in.get<std::uint32_t>();
  VECDB_REQUIRE(version == kFormatVersion, what + " has PQ format version " + std::to_string(version) +
                                               "; this vecdb reads version " + std::to_string(kFormatVersion));
  const auto metric = in.get<std::uint32_t>();
  const auto dim = in.get<std::uint64_t>();
  const auto m = in.get<std::uint64_t>();
  const auto centroids = in.get<std::uint64_t>();
  const auto flags = in.get<std::uint32_t>();
  const auto reserved = in.get<std::uint32_t>();
  VECDB_REQUIRE(metric <= 2 && dim >= 1 && dim <= kMaxDim && m >= 1 && m <= dim && dim % m == 0 &&
                    centroids == kCentroids && flags <= 1 && reserved == 0,
                what + " has an invalid PQ header");
  auto pq = std::make_unique<ProductQuantizer>(dim, m, static_cast<Metric>(metric));
  if (flags & 1u) {
    VECDB_REQUIRE(in.remaining() >= dim * dim * sizeof(float), what + " is truncated");
    std::vector<float> rotation(dim * dim);
    in.get_bytes(rotation.data(), rotation.size() * sizeof(float));
    pq->set_rotation(rotation.data());
  }
  std::vector<float> values(dim * kCentroids);
  in.get_bytes(values.data(), values.size() * sizeof(float));
  for (float v : values) VECDB_REQUIRE(std::isfinite(v), what + " is corrupt: a centroid is not finite");
  pq->set_centroids(std::move(values));
  return pq;
}

void ProductQuantizer::save(Sink& sink) const {
  ByteWriter out(sink);
  write(out);
  out.finish();
}

std::unique_ptr<ProductQuantizer> ProductQuantizer::load(Source& source) {
  const std::string what = "PQ codebook data";
  ByteReader in(source, what);
  auto pq = read(in, what);
  in.verify_checksum();
  return pq;
}

}  // namespace vecdb
