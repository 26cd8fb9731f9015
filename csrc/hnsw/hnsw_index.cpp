#include "hnsw/hnsw_index.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/topk.h"
#include "pq/pq_distance.h"

namespace vecdb {
namespace {

void set_bit_atomic(std::uint64_t* words, std::size_t i, int order = __ATOMIC_RELAXED) {
  __atomic_fetch_or(words + (i >> 6), std::uint64_t{1} << (i & 63), order);
}

}  // namespace

HnswIndex::HnswIndex(std::size_t dim, Metric metric, DType dtype, const HnswParams& params,
                     std::shared_ptr<const ProductQuantizer> pq)
    : vectors_(dim, metric, dtype, std::move(pq)), graph_(params) {
  VECDB_REQUIRE(dim >= 1 && dim <= kMaxDim, "dimension must be between 1 and " + std::to_string(kMaxDim));
}

std::size_t HnswIndex::deleted_count() const {
  // Two counters read one after the other: never report less than zero.
  const std::size_t slots = slots_.load(std::memory_order_acquire);
  const std::size_t live = size();
  return slots > live ? slots - live : 0;
}

template <class Fn>
void HnswIndex::with_node_distance(std::uint32_t slot, Fn&& fn) const {
  if (vectors_.dtype() == DType::F32) {
    fn(DenseDistance<float>(vectors_, static_cast<const float*>(vectors_.row(slot))));
  } else {
    std::vector<float> own(dim());
    vectors_.decode(slot, own.data());
    with_query_distance(own.data(), fn);
  }
}

template <class Fn>
void HnswIndex::with_query_distance(const float* prepared, Fn&& fn) const {
  switch (vectors_.dtype()) {
    case DType::F32: fn(DenseDistance<float>(vectors_, prepared)); break;
    case DType::F16: fn(DenseDistance<std::uint16_t>(vectors_, prepared)); break;
    default: fn(PqDistance(vectors_, prepared)); break;
  }
}

void HnswIndex::grow_to(std::size_t capacity) {
  std::unique_lock<std::shared_mutex> moving(growth_);
  graph_.resize(capacity);
  vectors_.resize(capacity);
  labels_.resize(capacity);
  deleted_.resize((capacity + 63) / 64, 0);
  replaced_by_.resize(capacity, 0);
}

void HnswIndex::check_new_ids(const std::int64_t* ids, std::size_t n) const {
  for (std::size_t i = 0; i < n; ++i)
    VECDB_REQUIRE(ids[i] >= 0, "ids must be >= 0, got " + std::to_string(ids[i]));
  std::vector<std::int64_t> sorted(ids, ids + n);
  std::sort(sorted.begin(), sorted.end());
  const auto twice = std::adjacent_find(sorted.begin(), sorted.end());
  VECDB_REQUIRE(twice == sorted.end(), "id " + std::to_string(twice == sorted.end() ? 0 : *twice) +
                                           " appears more than once in the batch");
  VECDB_REQUIRE(sorted.empty() || sorted.back() < std::numeric_limits<std::int64_t>::max(),
                "ids must be below 2^63 - 1");
}

std::int64_t HnswIndex::add(const float* rows, std::size_t n, const std::int64_t* ids, std::size_t n_threads) {
  std::lock_guard<std::mutex> writing(write_mutex_);
  if (ids) check_new_ids(ids, n);
  const std::int64_t first_id = next_id_.load(std::memory_order_relaxed);
  if (n == 0) return ids ? -1 : first_id;
  std::size_t first = slots_.load(std::memory_order_relaxed);
  // Reuse the room deleted vectors hold before asking for more.
  const std::size_t retired = first - size();
  if (first + n > graph_.capacity() && retired > 0 && 4 * retired >= first) {
    compact_locked(n_threads);
    first = slots_.load(std::memory_order_relaxed);
  }
  if (first + n > graph_.capacity()) grow_to(std::max(first + n, 2 * graph_.capacity()));
  const std::int64_t largest_new = ids ? *std::max_element(ids, ids + n) : first_id + static_cast<std::int64_t>(n) - 1;
  {
    std::unique_lock<std::shared_mutex> mapping(id_map_mutex_);
    slot_of_.reserve(slot_of_.size() + n, static_cast<std::uint64_t>(std::max(largest_new, first_id - 1)) + 1);
  }

  std::shared_lock<std::shared_mutex> shared(growth_);
  record_heads();
  // Rows already held (earlier in this batch too) become copies; the others
  // are linked into the graph.
  std::vector<std::uint32_t> head_of(n);
  std::vector<std::size_t> linked;
  for (std::size_t i = 0; i < n; ++i) {
    const auto slot = static_cast<std::uint32_t>(first + i);
    vectors_.set(slot, rows + i * dim());
    labels_[slot] = ids ? ids[i] : first_id + static_cast<std::int64_t>(i);
    head_of[i] = heads_.find_or_add(slot, vectors_);
    if (head_of[i] == RowTable::kAbsent) linked.push_back(i);
  }
  // Small batches insert in order on one thread: a single-threaded build is
  // deterministic for a given seed.
  const std::size_t threads = linked.size() >= 64 ? n_threads : 1;
  parallel_for(linked.size(), threads, [&](std::size_t j, std::size_t) {
    const std::size_t i = linked[j];
    const auto slot = static_cast<std::uint32_t>(first + i);
    const int level = graph_.draw_level(sequence_ + i);
    auto insert = [&](const DistanceComputer& distance) {
      graph_.insert(slot, level, distance, deleted_.data(), visited_);
    };
    if (vectors_.dtype() == DType::PQ8) {
      // Codes lose detail: link the node by its exact vector's distances.
      std::vector<float> own(dim());
      vectors_.prepare_query(rows + i * dim(), own.data());
      with_query_distance(own.data(), insert);
    } else {
      with_node_distance(slot, insert);
    }
  });
  // After the batch's inserts: a head may be in this batch.
  for (std::size_t i = 0; i < n; ++i)
    if (head_of[i] != RowTable::kAbsent) graph_.add_copy(static_cast<std::uint32_t>(first + i), head_of[i]);
  // Publish: counts first, so len() and id_bound() never lag behind what a
  // search can return; then the new slots; then replaced vectors retire (a
  // search in between may meet both the old and the new vector of an id and
  // keeps the closer: never neither).
  std::size_t replaced = 0;
  std::int64_t largest = first_id - 1;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t id = labels_[first + i];
    replaced += slot_of_.find(id) != IdMap::kAbsent;
    largest = std::max(largest, id);
  }
  live_.fetch_add(n - replaced, std::memory_order_acq_rel);
  next_id_.store(largest + 1, std::memory_order_release);
  sequence_ += n;
  slots_.store(first + n, std::memory_order_release);
  extend_own_labels();
  std::unique_lock<std::shared_mutex> mapping(id_map_mutex_);
  for (std::size_t i = 0; i < n; ++i) {
    const auto slot = static_cast<std::uint32_t>(first + i);
    const std::uint32_t previous = slot_of_.set(labels_[slot], slot);
    if (previous == IdMap::kAbsent) continue;
    // Searches that began before this replace was published keep the old vector (ResultFilter::replaced_by).
    __atomic_store_n(&replaced_by_[previous], slot, __ATOMIC_RELAXED);
    set_bit_atomic(deleted_.data(), previous, __ATOMIC_RELEASE);
  }
  return ids ? -1 : first_id;
}

std::size_t HnswIndex::remove(const std::int64_t* ids, std::size_t n) {
  std::lock_guard<std::mutex> writing(write_mutex_);
  for (std::size_t i = 0; i < n; ++i)
    VECDB_REQUIRE(ids[i] >= 0, "ids must be >= 0, got " + std::to_string(ids[i]));
  std::shared_lock<std::shared_mutex> shared(growth_);
  std::unique_lock<std::shared_mutex> mapping(id_map_mutex_);
  std::size_t removed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t slot = slot_of_.erase(ids[i]);
    if (slot == IdMap::kAbsent) continue;
    set_bit_atomic(deleted_.data(), slot);
    ++removed;
  }
  live_.fetch_sub(removed, std::memory_order_acq_rel);
  return removed;
}

std::size_t HnswIndex::compact(std::size_t n_threads) {
  std::lock_guard<std::mutex> writing(write_mutex_);
  return compact_locked(n_threads);
}

std::size_t HnswIndex::compact_locked(std::size_t n_threads) {
  const std::size_t slots = slots_.load(std::memory_order_relaxed);
  const std::size_t retired = slots - size();
  if (retired == 0) return 0;
  // What goes: the deleted slots, except a deleted head whose ring holds a
  // live copy, which stays (its links are the copies' way in) and takes
  // that copy's id; the copy's slot goes instead. Every live id then keeps
  // exactly one slot.
  const std::vector<std::pair<std::uint32_t, std::uint32_t>> heirs = graph_.heirs(slots, deleted_.data());
  std::vector<std::uint64_t> gone = deleted_;
  for (const auto& [head, copy] : heirs) {
    gone[head >> 6] &= ~(std::uint64_t{1} << (head & 63));
    gone[copy >> 6] |= std::uint64_t{1} << (copy & 63);
  }
  {
    // Repair while searches go on: they read each list before or after.
    std::shared_lock<std::shared_mutex> shared(growth_);
    parallel_for(slots, n_threads, [&](std::size_t slot, std::size_t) {
      const auto node = static_cast<std::uint32_t>(slot);
      if (test_bit(gone.data(), node) || !graph_.needs_repair(node, gone.data())) return;
      with_node_distance(node, [&](const DistanceComputer& distance) {
        graph_.repair(node, distance, gone.data(), visited_);
      });
    });
    graph_.move_entry_off_deleted(slots, gone.data());
    for (std::uint32_t node : graph_.unreachable_nodes(slots, gone.data()))
      with_node_distance(node, [&](const DistanceComputer& distance) { graph_.link_back(node, distance, gone.data()); });
  }
  // Renumber densely: the only step searches wait for.
  std::unique_lock<std::shared_mutex> moving(growth_);
  std::vector<std::uint32_t> new_id(slots);
  std::uint32_t kept = 0;
  for (std::size_t slot = 0; slot < slots; ++slot)
    new_id[slot] = test_bit(gone.data(), slot) ? HnswGraph::kRemoved : kept++;
  VECDB_ASSERT(kept == size());
  graph_.renumber(new_id, kept);
  std::vector<std::int64_t> heir_ids;
  for (const auto& heir : heirs) heir_ids.push_back(labels_[heir.second]);
  for (std::uint32_t slot = 0; slot < slots; ++slot) {
    if (new_id[slot] == HnswGraph::kRemoved) continue;
    vectors_.move_row(slot, new_id[slot]);
    labels_[new_id[slot]] = labels_[slot];
  }
  // The id map follows each id to its slot's new place: a heir's id to
  // its head's.
  std::vector<std::uint32_t> slot_of_id = new_id;
  for (std::size_t i = 0; i < heirs.size(); ++i) {
    labels_[new_id[heirs[i].first]] = heir_ids[i];
    slot_of_id[heirs[i].second] = new_id[heirs[i].first];
  }
  vectors_.resize(kept);
  labels_.resize(kept);
  labels_.shrink_to_fit();
  deleted_.assign((kept + 63) / 64, 0);
  deleted_.shrink_to_fit();
  replaced_by_.assign(kept, 0);
  replaced_by_.shrink_to_fit();
  {
    std::unique_lock<std::shared_mutex> mapping(id_map_mutex_);
    slot_of_.renumber(slot_of_id);
  }
  slots_.store(kept, std::memory_order_release);
  own_labels_.store(0, std::memory_order_relaxed);
  extend_own_labels();
  visited_.clear();
  heads_.clear();  // its slot numbers are stale
  heads_recorded_ = false;
  return retired;
}

void HnswIndex::extend_own_labels() {
  const std::size_t slots = slots_.load(std::memory_order_relaxed);
  std::size_t own = own_labels_.load(std::memory_order_relaxed);
  while (own < slots && labels_[own] == static_cast<std::int64_t>(own)) ++own;
  own_labels_.store(own, std::memory_order_release);
}

ResultFilter HnswIndex::result_filter(std::size_t visible, const std::uint64_t* allowed,
                                      std::uint64_t allowed_bits) const {
  ResultFilter filter{visible, deleted_.data(), labels_.data(), allowed, allowed_bits, replaced_by_.data()};
  filter.own_labels = own_labels_.load(std::memory_order_acquire);
  return filter;
}

void HnswIndex::record_heads() {
  if (heads_recorded_) return;
  const std::size_t slots = slots_.load(std::memory_order_relaxed);
  for (std::uint32_t slot = 0; slot < slots; ++slot)
    if (!graph_.is_copy(slot)) heads_.find_or_add(slot, vectors_);
  heads_recorded_ = true;
}

void HnswIndex::search(const float* queries, std::size_t m, std::size_t k, std::size_t ef,
                       const std::uint64_t* allowed, std::uint64_t allowed_bits, std::size_t n_threads,
                       std::int64_t* ids, float* distances) const {
  std::shared_lock<std::shared_mutex> shared(growth_);
  // Vectors an add() is still inserting are not returned yet.
  const ResultFilter filter = result_filter(slots_.load(std::memory_order_acquire), allowed, allowed_bits);
  const std::size_t chunk = 16;
  const std::size_t n_chunks = (m + chunk - 1) / chunk;
  parallel_for(n_chunks, m >= 2 * chunk ? n_threads : 1, [&](std::size_t c, std::size_t) {
    std::vector<float> prepared(dim());
    for (std::size_t q = c * chunk; q < std::min(m, (c + 1) * chunk); ++q) {
      vectors_.prepare_query(queries + q * dim(), prepared.data());
      std::vector<Neighbor> found;
      with_query_distance(prepared.data(), [&](const DistanceComputer& distance) {
        found = graph_.search(distance, std::max(ef, k), filter, visited_);
      });
      std::int64_t* row_ids = ids + q * k;
      float* row_distances = distances + q * k;
      std::size_t r = 0;
      for (const Neighbor& hit : found) {
        if (r == k) break;
        const std::int64_t id = labels_[hit.second];
        if (std::find(row_ids, row_ids + r, id) != row_ids + r) continue;  // replaced mid-search
        row_ids[r] = id;
        row_distances[r++] = hit.first;
      }
      std::fill(row_ids + r, row_ids + k, -1);
      std::fill(row_distances + r, row_distances + k, std::numeric_limits<float>::infinity());
    }
  });
}

std::vector<std::uint32_t> HnswIndex::accepted_slots(const std::uint64_t* allowed, std::uint64_t allowed_bits) const {
  // Under the id map's lock, the map and the published slots agree: a
  // replace or delete holds the lock while it retires the old slot, so the
  // map's slots are exactly the live ones a search may return.
  std::shared_lock<std::shared_mutex> mapping(id_map_mutex_);
  const std::size_t slots = slots_.load(std::memory_order_acquire);
  // Few allowed ids: each is looked up, rather than every slot's label
  // tested (~1 ns a slot: a 500k-slot index spent 0.5 ms on a filter
  // keeping 500 points, whose scan takes 20 us). The ids are gathered until
  // they outnumber a share of the slots, when testing slots costs less.
  const std::uint64_t words =
      (std::min<std::uint64_t>(allowed_bits, static_cast<std::uint64_t>(next_id_.load(std::memory_order_acquire))) +
       63) / 64;
  const std::size_t sparse_limit = slots / kSparseFilterSlots;
  std::vector<std::int64_t> ids;
  bool sparse = allowed != nullptr;  // no filter: every live slot
  for (std::uint64_t w = 0; w < words && sparse; ++w) {
    for (std::uint64_t bits = allowed[w]; bits != 0; bits &= bits - 1) {
      if (ids.size() == sparse_limit) {
        sparse = false;
        break;
      }
      ids.push_back(static_cast<std::int64_t>(w * 64 + static_cast<std::uint64_t>(__builtin_ctzll(bits))));
    }
  }
  std::vector<std::uint32_t> accepted;
  if (sparse) {
    accepted.reserve(ids.size());
    constexpr std::size_t kAhead = 16;  // lookups in flight: each is a likely cache miss
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i + kAhead < ids.size()) slot_of_.prefetch(ids[i + kAhead]);
      const std::uint32_t slot = slot_of_.find(ids[i]);
      if (slot != IdMap::kAbsent && slot < slots) accepted.push_back(slot);
    }
    return accepted;
  }
  const ResultFilter filter = result_filter(slots, allowed, allowed_bits);
  for (std::uint32_t slot = 0; slot < slots; ++slot)
    if (filter.accepts(slot)) accepted.push_back(slot);
  return accepted;
}

void HnswIndex::exact_search(const float* queries, std::size_t m, std::size_t k, const std::uint64_t* allowed,
                             std::uint64_t allowed_bits, std::size_t n_threads, std::int64_t* ids,
                             float* distances) const {
  VECDB_REQUIRE(allowed != nullptr, "exact_search needs an allowed-id filter");
  std::shared_lock<std::shared_mutex> shared(growth_);
  std::vector<std::uint32_t> candidates = accepted_slots(allowed, allowed_bits);
  // Scored four at a time: pad to a multiple of four with repeats of the
  // last candidate, whose extra scores are never offered to the heap (a
  // repeat in the heap would take the place of a distinct neighbour).
  const std::size_t real = candidates.size();
  while (real > 0 && candidates.size() % 4 != 0) candidates.push_back(candidates[real - 1]);
  parallel_for(m, m >= 4 ? n_threads : 1, [&](std::size_t q, std::size_t) {
    std::vector<float> prepared(dim());
    vectors_.prepare_query(queries + q * dim(), prepared.data());
    // Twice k: a replaced id can hold two live slots for a moment.
    TopK best(2 * k);
    with_query_distance(prepared.data(), [&](const DistanceComputer& distance) {
      float scored[4];
      for (std::size_t i = 0; i < candidates.size(); i += 4) {
        if (i + 16 < candidates.size()) distance.prefetch(candidates.data() + i + 16, 4);
        distance.to_query4(candidates.data() + i, scored);
        // A slot's id is read only if its distance may enter the heap: one
        // cache miss fewer per scanned vector.
        for (std::size_t j = 0; j < 4 && i + j < real; ++j)
          if (!(scored[j] > best.threshold())) best.push(scored[j], labels_[candidates[i + j]]);
      }
    });
    std::vector<std::int64_t> found_ids(2 * k);
    std::vector<float> found_distances(2 * k);
    best.write_sorted(2 * k, found_ids.data(), found_distances.data());
    std::int64_t* row_ids = ids + q * k;
    float* row_distances = distances + q * k;
    std::size_t r = 0;
    for (std::size_t i = 0; i < 2 * k && r < k && found_ids[i] >= 0; ++i) {
      if (std::find(row_ids, row_ids + r, found_ids[i]) != row_ids + r) continue;
      row_ids[r] = found_ids[i];
      row_distances[r++] = found_distances[i];
    }
    std::fill(row_ids + r, row_ids + k, -1);
    std::fill(row_distances + r, row_distances + k, std::numeric_limits<float>::infinity());
  });
}

void HnswIndex::rerank(const float* queries, std::size_t m, const std::int64_t* candidates, std::size_t r,
                       std::size_t k, std::size_t n_threads, std::int64_t* ids, float* distances) const {
  // Slots cannot move while this shared lock is held (compaction renumbers
  // under the exclusive one), and a published slot's vector never changes.
  std::shared_lock<std::shared_mutex> shared(growth_);
  std::vector<std::uint32_t> slots(m * r, IdMap::kAbsent);
  {
    std::shared_lock<std::shared_mutex> mapping(id_map_mutex_);
    for (std::size_t i = 0; i < m * r; ++i)
      if (candidates[i] >= 0) slots[i] = slot_of_.find(candidates[i]);
  }
  parallel_for(m, m >= 4 ? n_threads : 1, [&](std::size_t q, std::size_t) {
    std::vector<float> prepared(dim());
    vectors_.prepare_query(queries + q * dim(), prepared.data());
    std::vector<std::uint32_t> present;
    present.reserve(r);
    for (std::size_t i = 0; i < r; ++i)
      if (slots[q * r + i] != IdMap::kAbsent) present.push_back(slots[q * r + i]);
    TopK best(k);
    with_query_distance(prepared.data(), [&](const DistanceComputer& distance) {
      float scored[4];
      std::size_t i = 0;
      // Candidates are scattered over the index: ask for the next ones early.
      distance.prefetch(present.data(), std::min<std::size_t>(present.size(), 8));
      for (; i + 4 <= present.size(); i += 4) {
        if (i + 8 < present.size()) distance.prefetch(present.data() + i + 8, std::min<std::size_t>(present.size() - i - 8, 4));
        distance.to_query4(present.data() + i, scored);
        for (int j = 0; j < 4; ++j) best.push(scored[j], labels_[present[i + j]]);
      }
      for (; i < present.size(); ++i) best.push(distance.to_query(present[i]), labels_[present[i]]);
    });
    best.write_sorted(k, ids + q * k, distances + q * k);
  });
}

std::size_t HnswIndex::count(const std::uint64_t* allowed, std::uint64_t allowed_bits) const {
  std::shared_lock<std::shared_mutex> shared(growth_);
  return accepted_slots(allowed, allowed_bits).size();
}

bool HnswIndex::contains(std::int64_t id) const {
  std::lock_guard<std::mutex> writing(write_mutex_);
  return slot_of_.find(id) != IdMap::kAbsent;
}

void HnswIndex::get_vectors(const std::int64_t* ids, std::size_t n, float* out, bool* found) const {
  std::lock_guard<std::mutex> writing(write_mutex_);
  std::shared_lock<std::shared_mutex> shared(growth_);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t slot = slot_of_.find(ids[i]);
    found[i] = slot != IdMap::kAbsent;
    if (found[i]) vectors_.decode(slot, out + i * dim());
  }
}

std::vector<std::int64_t> HnswIndex::ids() const {
  std::lock_guard<std::mutex> writing(write_mutex_);
  std::vector<std::int64_t> live;
  live.reserve(slot_of_.size());
  const std::size_t slots = slots_.load(std::memory_order_relaxed);
  for (std::size_t slot = 0; slot < slots; ++slot)
    if (!test_bit(deleted_.data(), slot)) live.push_back(labels_[slot]);
  return live;
}

std::size_t HnswIndex::memory_bytes() const {
  const HnswIndexStats s = stats();
  return s.vector_bytes + s.graph_bytes + s.id_map_bytes;
}

HnswIndexStats HnswIndex::stats() const {
  std::lock_guard<std::mutex> writing(write_mutex_);
  std::shared_lock<std::shared_mutex> shared(growth_);
  HnswIndexStats s;
  const std::size_t slots = slots_.load(std::memory_order_relaxed);
  s.live = size();
  s.deleted = slots - s.live;
  s.capacity = graph_.capacity();
  s.vector_bytes = vectors_.memory_bytes();
  s.graph_bytes = graph_.memory_bytes();
  s.id_map_bytes = labels_.capacity() * sizeof(std::int64_t) + deleted_.capacity() * sizeof(std::uint64_t) +
                   replaced_by_.capacity() * sizeof(std::uint32_t) + slot_of_.memory_bytes() + heads_.memory_bytes();
  s.graph = graph_.stats(slots, deleted_.data());
  return s;
}

}  // namespace vecdb

namespace vecdb {
namespace {

// File layout, version 5 (little-endian):
//   magic "VECDBHNS", u32 version, u32 metric, u32 dtype, u32 saved vectors
//   (SavedVectors: 0 every slot's, 1 the retired slots' only),
//   u64 dim, u64 M, u64 ef_construction, u64 seed, u64 slots, u64 sequence,
//   i64 next id                                         -- the header
//   PQ codebooks (dtype PQ8 only; see product_quantizer.cpp),
//   graph (entry point, levels (0xff: a copy), layer-0 rows (next node of
//   the ring of copies, link count, 2M links), upper links),
//   ids (slots x i64), deleted bitset ((slots + 63) / 64 x u64),
//   vectors (row bytes each: float32, IEEE half or PQ codes; of every slot,
//   or of each retired slot in slot order)
//   u64 checksum of every byte before it
// Versions 2 to 4 are still read: version 4 is version 5 always saving every
// vector (that word was reserved, 0), version 3 is version 4 without copies
// (no ring word in the layer-0 rows), version 2 is version 3 without PQ.
// Identical vectors in them stay nodes of their own.
constexpr char kMagic[8] = {'V', 'E', 'C', 'D', 'B', 'H', 'N', 'S'};
constexpr std::uint32_t kFormatVersion = 5;
constexpr std::uint32_t kOldestReadable = 2;
const char* const kWhat = "HNSW index data";

}  // namespace

void HnswIndex::save(Sink& sink, SavedVectors saved) const {
  std::lock_guard<std::mutex> writing(write_mutex_);
  std::shared_lock<std::shared_mutex> shared(growth_);
  const std::size_t slots = slots_.load(std::memory_order_relaxed);
  ByteWriter out(sink);
  out.put_bytes(kMagic, sizeof(kMagic));
  out.put<std::uint32_t>(kFormatVersion);
  out.put<std::uint32_t>(static_cast<std::uint32_t>(metric()));
  out.put<std::uint32_t>(static_cast<std::uint32_t>(dtype()));
  out.put<std::uint32_t>(static_cast<std::uint32_t>(saved));
  out.put<std::uint64_t>(dim());
  out.put<std::uint64_t>(params().M);
  out.put<std::uint64_t>(params().ef_construction);
  out.put<std::uint64_t>(params().seed);
  out.put<std::uint64_t>(slots);
  out.put<std::uint64_t>(sequence_);
  out.put<std::int64_t>(next_id_.load(std::memory_order_relaxed));
  if (pq()) pq()->write(out);
  graph_.write(out, slots);
  out.put_bytes(labels_.data(), slots * sizeof(std::int64_t));
  out.put_bytes(deleted_.data(), (slots + 63) / 64 * sizeof(std::uint64_t));
  if (saved == SavedVectors::kAll) {
    out.put_bytes(vectors_.data(), slots * vectors_.row_bytes());
  } else {
    for (std::uint32_t slot = 0; slot < slots; ++slot)
      if (test_bit(deleted_.data(), slot)) out.put_bytes(vectors_.row(slot), vectors_.row_bytes());
  }
  out.finish();
}

std::unique_ptr<HnswIndex> HnswIndex::load(Source& source) {
  SavedVectors saved;
  auto index = read(source, &saved);
  VECDB_REQUIRE(saved == SavedVectors::kAll, std::string(kWhat) + " was saved without its live vectors (a "
                                                                   "collection's snapshot: they are in its LMDB)");
  index->check_copies(kWhat);
  return index;
}

std::unique_ptr<HnswIndex> HnswIndex::read(Source& source, SavedVectors* saved) {
  ByteReader in(source, kWhat);
  char magic[sizeof(kMagic)];
  VECDB_REQUIRE(in.remaining() >= sizeof(magic), std::string(kWhat) + " is too short to be an HNSW index");
  in.get_bytes(magic, sizeof(magic));
  VECDB_REQUIRE(std::memcmp(magic, kMagic, sizeof(kMagic)) == 0,
                std::string(kWhat) + " does not start with the vecdb HNSW magic bytes");
  const auto version = in.get<std::uint32_t>();
  VECDB_REQUIRE(version >= kOldestReadable && version <= kFormatVersion,
                std::string(kWhat) + " has format version " + std::to_string(version) + "; this vecdb reads versions " +
                    std::to_string(kOldestReadable) + " to " + std::to_string(kFormatVersion));
  const auto metric = in.get<std::uint32_t>();
  const auto dtype = in.get<std::uint32_t>();
  const auto saved_vectors = in.get<std::uint32_t>();  // reserved (0) before version 5
  HnswParams params;
  const auto dim = in.get<std::uint64_t>();
  params.M = in.get<std::uint64_t>();
  params.ef_construction = in.get<std::uint64_t>();
  params.seed = in.get<std::uint64_t>();
  const auto slots = in.get<std::uint64_t>();
  const auto sequence = in.get<std::uint64_t>();
  const auto next_id = in.get<std::int64_t>();
  const bool coded = version >= 3 && dtype == static_cast<std::uint32_t>(DType::PQ8);
  VECDB_REQUIRE(metric <= 2 && (dtype == static_cast<std::uint32_t>(DType::F32) ||
                                dtype == static_cast<std::uint32_t>(DType::F16) || coded) &&
                    saved_vectors <= (version >= 5 ? 1u : 0u) && dim >= 1 && dim <= kMaxDim && params.M >= 2 && params.M <= 256 &&
                    params.ef_construction >= 1 && params.ef_construction <= 100000 && next_id >= 0 &&
                    slots < (std::uint64_t{1} << 32) - 1 && sequence >= slots,
                std::string(kWhat) + " has an invalid header");
  std::shared_ptr<const ProductQuantizer> pq;
  if (coded) {
    pq = ProductQuantizer::read(in, kWhat);
    VECDB_REQUIRE(pq->dim() == dim && pq->metric() == static_cast<Metric>(metric),
                  std::string(kWhat) + " is corrupt: its PQ codebooks do not match the index");
  }
  *saved = static_cast<SavedVectors>(saved_vectors);
  // Every slot costs at least its level, links, id and (saved whole) vector:
  // refuse a size the input cannot hold before allocating for it.
  const std::uint64_t row_bytes = coded ? pq->m() : dim * dtype_size(static_cast<DType>(dtype));
  const bool with_copies = version >= 4;
  const std::uint64_t per_slot =
      1 + ((with_copies ? 2 : 1) + 2 * params.M) * 4 + 8 + (*saved == SavedVectors::kAll ? row_bytes : 0);
  VECDB_REQUIRE(slots <= in.remaining() / per_slot, std::string(kWhat) + " is truncated");

  auto index = std::make_unique<HnswIndex>(dim, static_cast<Metric>(metric), static_cast<DType>(dtype), params,
                                           std::move(pq));
  index->grow_to(slots);
  index->graph_.read(in, slots, with_copies);
  in.get_bytes(index->labels_.data(), slots * sizeof(std::int64_t));
  in.get_bytes(index->deleted_.data(), (slots + 63) / 64 * sizeof(std::uint64_t));
  if (*saved == SavedVectors::kAll) {
    in.get_bytes(index->vectors_.mutable_data(), slots * index->vectors_.row_bytes());
  } else {
    for (std::uint32_t slot = 0; slot < slots; ++slot)
      if (test_bit(index->deleted_.data(), slot))
        in.get_bytes(index->vectors_.mutable_row(slot), index->vectors_.row_bytes());
  }
  in.verify_checksum();

  index->graph_.validate(slots, kWhat);
  if (slots % 64 != 0)
    VECDB_REQUIRE(index->deleted_.back() >> (slots % 64) == 0, std::string(kWhat) + " is corrupt: stray deleted bits");
  index->slot_of_.reserve(slots, static_cast<std::uint64_t>(next_id));
  for (std::uint32_t slot = 0; slot < slots; ++slot) {
    if (test_bit(index->deleted_.data(), slot)) continue;
    const std::int64_t id = index->labels_[slot];
    VECDB_REQUIRE(id >= 0 && id < next_id, std::string(kWhat) + " is corrupt: id out of range at slot " +
                                               std::to_string(slot));
    VECDB_REQUIRE(index->slot_of_.set(id, slot) == IdMap::kAbsent,
                  std::string(kWhat) + " is corrupt: id " + std::to_string(id) + " appears twice");
  }
  index->slots_.store(slots, std::memory_order_release);
  index->sequence_ = sequence;
  index->live_.store(index->slot_of_.size(), std::memory_order_release);
  index->next_id_.store(next_id, std::memory_order_release);
  index->extend_own_labels();
  return index;
}

void HnswIndex::check_copies(const char* what) const {
  const std::size_t slots = slots_.load(std::memory_order_relaxed);
  for (std::uint32_t head = 0; head < slots; ++head) {
    if (graph_.is_copy(head)) continue;
    for (std::uint32_t copy = graph_.next_copy(head); copy != head; copy = graph_.next_copy(copy))
      VECDB_REQUIRE(std::memcmp(vectors_.row(copy), vectors_.row(head), vectors_.row_bytes()) == 0,
                    std::string(what) + " is corrupt: the vector at slot " + std::to_string(copy) +
                        " is not a copy of its head's");
  }
}

HnswRefill::HnswRefill(Source& source) {
  HnswIndex::SavedVectors saved;
  index_ = HnswIndex::read(source, &saved);
  dim_ = index_->dim();
  const std::size_t slots = index_->slots_.load(std::memory_order_relaxed);
  if (saved == HnswIndex::SavedVectors::kAll) {
    filled_.assign((slots + 63) / 64, ~std::uint64_t{0});
  } else {
    filled_ = index_->deleted_;
    awaiting_ = index_->size();
  }
}

std::size_t HnswRefill::fill(const float* rows, const std::int64_t* ids, std::size_t n, std::size_t n_threads) {
  VECDB_REQUIRE(index_ != nullptr, "this refill has finished: its index was handed over");
  std::vector<std::pair<std::size_t, std::uint32_t>> found;  // (row, slot)
  found.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t slot = ids[i] < 0 ? IdMap::kAbsent : index_->slot_of_.find(ids[i]);
    if (slot != IdMap::kAbsent) found.emplace_back(i, slot);
  }
  // Rows go to distinct slots in parallel (normalizing, converting, and the
  // first touch of the memory: most of a load's time); an id given twice
  // keeps its last row, as a serial pass would.
  std::vector<std::uint32_t> slots(found.size());
  for (std::size_t j = 0; j < found.size(); ++j) slots[j] = found[j].second;
  std::sort(slots.begin(), slots.end());
  const bool distinct = std::adjacent_find(slots.begin(), slots.end()) == slots.end();
  constexpr std::size_t kRowsPerTask = 64;
  parallel_for((found.size() + kRowsPerTask - 1) / kRowsPerTask, distinct ? n_threads : 1,
               [&](std::size_t task, std::size_t) {
                 const std::size_t end = std::min(found.size(), (task + 1) * kRowsPerTask);
                 for (std::size_t j = task * kRowsPerTask; j < end; ++j)
                   index_->vectors_.set(found[j].second, rows + found[j].first * dim_);
               });
  for (const auto& [row, slot] : found) {
    if (test_bit(filled_.data(), slot)) continue;
    filled_[slot >> 6] |= std::uint64_t{1} << (slot & 63);
    --awaiting_;
  }
  return found.size();
}

std::unique_ptr<HnswIndex> HnswRefill::finish() {
  VECDB_REQUIRE(index_ != nullptr, "this refill has finished: its index was handed over");
  HnswIndex& index = *index_;
  const std::size_t slots = index.slots_.load(std::memory_order_relaxed);
  for (std::uint32_t slot = 0; awaiting_ > 0 && slot < slots; ++slot) {
    if (test_bit(filled_.data(), slot)) continue;
    std::uint32_t source = slot;
    for (std::uint32_t other = index.graph_.next_copy(slot); other != slot; other = index.graph_.next_copy(other))
      if (test_bit(filled_.data(), other)) source = other;
    if (source != slot)
      std::memcpy(index.vectors_.mutable_row(slot), index.vectors_.row(source), index.vectors_.row_bytes());
    else
      std::memset(index.vectors_.mutable_row(slot), 0, index.vectors_.row_bytes());
  }
  index.check_copies(kWhat);
  awaiting_ = 0;
  return std::move(index_);
}

}  // namespace vecdb
