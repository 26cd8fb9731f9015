#include "hnsw/hnsw_index.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "common/bytes.h"
#include "common/error.h"
#include "common/parallel.h"

namespace vecdb {

HnswIndex::HnswIndex(std::size_t dim, Metric metric, const HnswParams& params)
    : vectors_(dim, metric), graph_(params) {
  VECDB_REQUIRE(dim >= 1 && dim <= kMaxDim, "dimension must be between 1 and " + std::to_string(kMaxDim));
}

std::size_t HnswIndex::memory_bytes() const {
  std::shared_lock<std::shared_mutex> lock(growth_);
  return vectors_.memory_bytes() + graph_.memory_bytes();
}

std::int64_t HnswIndex::add(const float* rows, std::size_t n, std::size_t n_threads) {
  std::lock_guard<std::mutex> adding(add_mutex_);
  const std::size_t first = size();
  if (n == 0) return static_cast<std::int64_t>(first);
  if (first + n > graph_.capacity()) {
    std::unique_lock<std::shared_mutex> growing(growth_);
    const std::size_t capacity = std::max(first + n, 2 * graph_.capacity());
    graph_.reserve(capacity);
    vectors_.reserve(capacity);
    deleted_.resize((capacity + 63) / 64, 0);
  }
  std::shared_lock<std::shared_mutex> shared(growth_);
  for (std::size_t i = 0; i < n; ++i)
    vectors_.set(static_cast<std::uint32_t>(first + i), rows + i * dim());
  // Small batches insert in order on one thread: a single-threaded build is
  // deterministic for a given seed.
  const std::size_t threads = n >= 64 ? n_threads : 1;
  parallel_for(n, threads, [&](std::size_t i, std::size_t) {
    const auto node = static_cast<std::uint32_t>(first + i);
    const DenseDistance distance(vectors_, vectors_.row(node));
    graph_.insert(node, distance, visited_);
  });
  size_.store(first + n, std::memory_order_release);
  return static_cast<std::int64_t>(first);
}

std::size_t HnswIndex::remove(const std::int64_t* ids, std::size_t n) {
  std::shared_lock<std::shared_mutex> shared(growth_);
  const std::size_t count = size();
  for (std::size_t i = 0; i < n; ++i)
    VECDB_REQUIRE(ids[i] >= 0 && static_cast<std::size_t>(ids[i]) < count,
                  "id " + std::to_string(ids[i]) + " is out of range [0, " + std::to_string(count) + ")");
  std::size_t newly = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::size_t>(ids[i]);
    const std::uint64_t bit = std::uint64_t{1} << (id & 63);
    const std::uint64_t before = __atomic_fetch_or(&deleted_[id >> 6], bit, __ATOMIC_RELAXED);
    if (!(before & bit)) ++newly;
  }
  deleted_count_.fetch_add(newly, std::memory_order_acq_rel);
  return newly;
}

void HnswIndex::search(const float* queries, std::size_t m, std::size_t k, std::size_t ef,
                       std::size_t visible, const std::uint64_t* allowed, std::size_t n_threads,
                       std::int64_t* ids, float* distances) const {
  std::shared_lock<std::shared_mutex> shared(growth_);
  const ResultFilter filter{visible, allowed, deleted_.data()};
  const std::size_t chunk = 16;
  const std::size_t n_chunks = (m + chunk - 1) / chunk;
  parallel_for(n_chunks, m >= 2 * chunk ? n_threads : 1, [&](std::size_t c, std::size_t) {
    std::vector<float> prepared(dim());
    for (std::size_t q = c * chunk; q < std::min(m, (c + 1) * chunk); ++q) {
      vectors_.prepare_query(queries + q * dim(), prepared.data());
      const DenseDistance distance(vectors_, prepared.data());
      const std::vector<Neighbor> found = graph_.search(distance, k, ef, filter, visited_);
      for (std::size_t r = 0; r < k; ++r) {
        const bool hit = r < found.size();
        ids[q * k + r] = hit ? static_cast<std::int64_t>(found[r].second) : -1;
        distances[q * k + r] = hit ? found[r].first : std::numeric_limits<float>::infinity();
      }
    }
  });
}

}  // namespace vecdb

namespace vecdb {
namespace {

// File layout, version 1 (little-endian):
//   magic "VECDBHNS", u32 version, u32 metric, u64 dim, u64 M,
//   u64 ef_construction, u64 seed, u64 size            -- the header
//   graph (entry point, levels, layer-0 links, upper links), vectors
//   (size x dim float32), deleted bitset ((size + 63) / 64 u64)
//   u64 checksum of every byte before it
constexpr char kMagic[8] = {'V', 'E', 'C', 'D', 'B', 'H', 'N', 'S'};
constexpr std::uint32_t kFormatVersion = 1;
const char* const kWhat = "HNSW index data";

}  // namespace

std::vector<std::uint8_t> HnswIndex::serialize() const {
  std::lock_guard<std::mutex> adding(add_mutex_);
  std::shared_lock<std::shared_mutex> shared(growth_);
  const std::size_t count = size();
  ByteWriter out;
  out.put_bytes(kMagic, sizeof(kMagic));
  out.put<std::uint32_t>(kFormatVersion);
  out.put<std::uint32_t>(static_cast<std::uint32_t>(metric()));
  out.put<std::uint64_t>(dim());
  out.put<std::uint64_t>(params().M);
  out.put<std::uint64_t>(params().ef_construction);
  out.put<std::uint64_t>(params().seed);
  out.put<std::uint64_t>(count);
  graph_.write(out, count);
  out.put_bytes(vectors_.row(0), count * dim() * sizeof(float));
  for (std::size_t w = 0; w < (count + 63) / 64; ++w)
    out.put<std::uint64_t>(__atomic_load_n(&deleted_[w], __ATOMIC_RELAXED));
  out.put<std::uint64_t>(checksum64(out.bytes().data(), out.bytes().size()));
  return std::move(out.bytes());
}

std::unique_ptr<HnswIndex> HnswIndex::deserialize(const std::uint8_t* data, std::size_t size) {
  VECDB_REQUIRE(size >= sizeof(kMagic) + 8 && std::memcmp(data, kMagic, sizeof(kMagic)) == 0,
                std::string(kWhat) + " does not start with the vecdb HNSW magic bytes");
  ByteReader in(data, size - 8, kWhat);
  char magic[8];
  in.get_bytes(magic, sizeof(magic));
  const auto version = in.get<std::uint32_t>();
  VECDB_REQUIRE(version == kFormatVersion, std::string(kWhat) + " has format version " +
                                               std::to_string(version) + "; this vecdb reads version " +
                                               std::to_string(kFormatVersion));
  std::uint64_t stored_checksum;
  std::memcpy(&stored_checksum, data + size - 8, 8);
  VECDB_REQUIRE(stored_checksum == checksum64(data, size - 8),
                std::string(kWhat) + " is corrupt or truncated (checksum mismatch)");
  const auto metric = in.get<std::uint32_t>();
  VECDB_REQUIRE(metric <= 2, std::string(kWhat) + " has an unknown metric");
  HnswParams params;
  const auto dim = in.get<std::uint64_t>();
  params.M = in.get<std::uint64_t>();
  params.ef_construction = in.get<std::uint64_t>();
  params.seed = in.get<std::uint64_t>();
  const auto count = in.get<std::uint64_t>();
  VECDB_REQUIRE(dim >= 1 && dim <= kMaxDim && params.M >= 2 && params.M <= 256 &&
                    params.ef_construction >= 1 && count < (std::uint64_t{1} << 32) - 1,
                std::string(kWhat) + " has invalid parameters");
  // Every node costs at least its level byte, links and vector: refuse a
  // size the input cannot hold before allocating for it.
  const std::uint64_t per_node = 1 + (1 + 2 * params.M) * 4 + dim * 4;
  VECDB_REQUIRE(count <= in.remaining() / per_node, std::string(kWhat) + " is truncated");

  auto index = std::make_unique<HnswIndex>(dim, static_cast<Metric>(metric), params);
  const std::size_t capacity = std::max<std::size_t>(count, 1);
  index->graph_.reserve(capacity);
  index->vectors_.reserve(capacity);
  index->deleted_.assign((capacity + 63) / 64, 0);
  index->graph_.read(in, count);
  in.get_bytes(index->vectors_.mutable_row(0), count * dim * sizeof(float));
  std::size_t deleted = 0;
  for (std::size_t w = 0; w < (count + 63) / 64; ++w) {
    index->deleted_[w] = in.get<std::uint64_t>();
    deleted += static_cast<std::size_t>(__builtin_popcountll(index->deleted_[w]));
  }
  VECDB_REQUIRE(in.remaining() == 0, std::string(kWhat) + " has trailing bytes");
  index->size_.store(count, std::memory_order_release);
  index->deleted_count_.store(deleted, std::memory_order_release);
  return index;
}

}  // namespace vecdb
