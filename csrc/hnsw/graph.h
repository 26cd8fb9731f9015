// The HNSW graph of Malkov & Yashunin: layered proximity graph, greedy
// descent through the upper layers, ef-bounded beam search on layer 0,
// neighbour-selection heuristic with pruning; M links per node on upper
// layers and 2*M on layer 0.
//
// The graph knows nothing about vectors or ids: every distance comes from a
// DistanceComputer, and which nodes a search may return is a ResultFilter.
// It never stores a node before the caller has made the node's data
// readable.
//
// Filtered search (a ResultFilter with `allowed`) that lets through a
// middle share of the nodes walks layer 0 the way ACORN-1 does (Patel et
// al., SIGMOD 2024), on the graph built without the filter: only accepted
// nodes are scored and become candidates; a rejected neighbour is stepped
// through unscored, the accepted nodes of its own list joining (two hops),
// until the expansion holds as many nodes as a full list. The walk then
// stays on the allowed subset, which two-hop links keep connected, and pays
// a distance only for nodes it may return. Outside that range a filtered
// search walks through every node as HNSW does, scoring rejected ones to
// guide the walk. Above it (kTwoHopMaxShare), a node's list holds enough
// accepted nodes for the subset to be connected without two hops, and
// scoring the few rejected ones costs less than opening their lists. Below
// it, the (2M)^2 nodes two hops reach hold fewer accepted ones than one and
// a half lists have links (a share under kTwoHopMinLists / 2M, 4.7% at
// M 16), two hops connect the subset less and less (recall@10 at ef 64:
// 0.95 with 3% allowed, 0.91 with 2%, 0.79 with 1%; 50k x 384, M 16), and
// the slow full walk at least finds the allowed nodes (a scan of them,
// which the planner picks there, is faster still). Searches without
// `allowed` (deleted nodes and `visible` only) walk through every node.
//
// Copies: a node the caller knows to hold the same vector as a linked node
// (its head) is not linked at all. It joins the head's ring of copies (a
// cycle through the head and every copy, one word per node on layer 0) and
// stands in the graph only through its head: a search that reaches the head
// scores it once and returns it and its copies at that distance (those the
// filter accepts), and a head the filter rejects still counts as found when
// one of its copies passes. Identical vectors therefore cannot crowd each
// other, or anything else, out of the link lists (with Malkov's heuristic
// every copy is a new "direction" at distance 0, the lists fill with copies
// and the other nodes lose their in-links), every copy is reachable as soon
// as its head is, and the beam of a search counts each vector once.
//
// Concurrency: insert() may run on many threads at once and concurrently
// with search(); so may repair(). Writers serialize per node with striped
// locks; readers take no locks and read link entries with acquire loads, so
// they see each list either before or after an update, never a half-written
// one (a node id is stored in a list only after that node's own data and
// links are written). add_copy() may run concurrently with searches too: a
// copy is spliced into its ring right after the head, so a reader walking a
// ring from its head always gets back to it. resize() and renumber() move
// memory: the caller excludes every reader and writer (the index holds a
// reader-writer lock).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/aligned.h"
#include "common/bytes.h"
#include "distance/distance_computer.h"
#include "hnsw/visited.h"

namespace vecdb {

struct HnswParams {
  std::size_t M = 16;
  std::size_t ef_construction = 200;
  std::uint64_t seed = 0;
};

using Neighbor = std::pair<float, std::uint32_t>;  // (distance, node)

inline bool test_bit(const std::uint64_t* words, std::uint64_t i) { return (words[i >> 6] >> (i & 63)) & 1u; }
// For link lists another thread may be writing.
inline std::uint32_t load_acquire(const std::uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
// For bitsets another thread may be setting bits in.
inline bool test_bit_atomic(const std::uint64_t* words, std::uint64_t i) {
  return (__atomic_load_n(words + (i >> 6), __ATOMIC_RELAXED) >> (i & 63)) & 1u;
}

// Which nodes a search may return (it still walks through the others,
// scoring them or not: "Filtered search" above):
// nodes below `visible` (those published when the search began), not set in
// `deleted` (if given; bits over nodes, set concurrently by deletes and
// replaces) unless `replaced_by` (if given) names the node that replaced
// this one and the search cannot see it (at or above `visible`: a replace
// published after the search began, whose old vector still stands for the
// point in it; without this, such a search found the point in neither
// node), and, if `allowed` is given, whose label has its bit set there
// (bits over labels; labels at or above allowed_bits are not allowed).
// Nodes below `own_labels` are their own labels (an index filled in id
// order, as a collection's is), so testing them reads no label: on 500k
// nodes the labels (4 MB) miss the cache where the filter's bits hit it.
struct ResultFilter {
  std::size_t visible = ~std::size_t{0};
  const std::uint64_t* deleted = nullptr;
  const std::int64_t* labels = nullptr;
  const std::uint64_t* allowed = nullptr;
  std::uint64_t allowed_bits = 0;
  const std::uint32_t* replaced_by = nullptr;  // node -> its replacement (0: none), set before its deleted bit
  std::size_t own_labels = 0;

  bool accepts(std::uint32_t node) const {
    if (node >= visible) return false;
    if (deleted && test_bit_atomic(deleted, node) && !replaced_unseen(node)) return false;
    if (!allowed) return true;
    const auto label = node < own_labels ? std::uint64_t{node} : static_cast<std::uint64_t>(labels[node]);
    return label < allowed_bits && test_bit(allowed, label);
  }

  // Brings in what accepts(node) reads that is likely not cached: the
  // node's label.
  void prefetch(std::uint32_t node) const {
    if (allowed && node >= own_labels) __builtin_prefetch(labels + node);
  }

  bool replaced_unseen(std::uint32_t node) const {
    if (!replaced_by) return false;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);  // pairs with the release setting the deleted bit
    const std::uint32_t by = __atomic_load_n(replaced_by + node, __ATOMIC_RELAXED);
    return by != 0 && by >= visible;
  }
};

// Shape of the graph, for introspection.
struct GraphStats {
  std::vector<std::size_t> nodes_per_level;  // live nodes whose top level is l
  std::vector<double> mean_out_degree;       // live nodes' links at level l
  std::size_t copies = 0;                    // live copies (not counted above)
  int entry_level = -1;
};

class HnswGraph {
 public:
  static constexpr std::uint32_t kRemoved = ~std::uint32_t{0};  // renumber(): node dropped

  explicit HnswGraph(const HnswParams& params);

  const HnswParams& params() const { return params_; }
  std::size_t capacity() const { return levels_.size(); }

  // Room for `capacity` nodes; shrinking drops the nodes above it and gives
  // their memory back. Caller excludes all concurrent access.
  void resize(std::size_t capacity);

  // The level of the sequence-th node ever inserted: a deterministic
  // function of the seed, so a build's shape does not depend on thread
  // scheduling.
  int draw_level(std::uint64_t sequence) const;

  // Links node, whose top level is `level`, into the graph; distance is
  // bound to node's own vector. Nodes set in `deleted` still guide the
  // search but are not chosen as neighbours while live ones are found.
  void insert(std::uint32_t node, int level, const DistanceComputer& distance, const std::uint64_t* deleted,
              VisitedPool& pool);

  // Makes node a copy of head (the caller has checked that both hold the
  // same vector): no links of its own, reached through head's ring. head
  // is a node whose insert() has returned (never a copy).
  void add_copy(std::uint32_t node, std::uint32_t head);
  bool is_copy(std::uint32_t node) const { return levels_[node] == kCopy; }
  // The next node of node's ring (node itself when it has no copies).
  std::uint32_t next_copy(std::uint32_t node) const { return __atomic_load_n(level0_row(node), __ATOMIC_ACQUIRE); }

  // Up to ef nodes closest to the computer's query that `filter` accepts,
  // closest first (a head's copies right after it, at its distance).
  std::vector<Neighbor> search(const DistanceComputer& distance, std::size_t ef, const ResultFilter& filter,
                               VisitedPool& pool) const;

  // Compaction, with writers excluded by the caller (searches may go on).
  // Copies are never linked to, so the graph can only drop a ring whole: a
  // deleted head whose ring still holds a live copy must stay, and takes
  // over that copy's id. heirs() lists those (head, first live copy) pairs;
  // the caller passes, as `deleted` below, the nodes that really go.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> heirs(std::size_t size, const std::uint64_t* deleted) const;
  // A live node whose lists reach deleted nodes gets new lists chosen
  // among its live neighbours and its deleted neighbours' live neighbours
  // (FreshDiskANN's delete consolidation); distance is bound to its vector.
  bool needs_repair(std::uint32_t node, const std::uint64_t* deleted) const;
  void repair(std::uint32_t node, const DistanceComputer& distance, const std::uint64_t* deleted,
              VisitedPool& pool);
  // Live nodes (not copies) among the first `size` that no live node links
  // to on layer 0.
  std::vector<std::uint32_t> unreachable_nodes(std::size_t size, const std::uint64_t* deleted) const;
  // Offers node as a neighbour to each node it links to on layer 0.
  void link_back(std::uint32_t node, const DistanceComputer& distance, const std::uint64_t* deleted);
  // Moves the entry point to a live node of the highest level if it is deleted.
  void move_entry_off_deleted(std::size_t size, const std::uint64_t* deleted);
  // Node i becomes new_id[i], or is dropped when new_id[i] == kRemoved
  // (new ids keep the old order); links to dropped nodes are removed, rings
  // close over their dropped copies (a head is dropped only with its whole
  // ring) and the capacity shrinks to new_size. Caller excludes all
  // concurrent access.
  void renumber(const std::vector<std::uint32_t>& new_id, std::size_t new_size);

  GraphStats stats(std::size_t size, const std::uint64_t* deleted) const;
  std::size_t memory_bytes() const;

  // The first `size` nodes' levels, links and the entry point. The caller
  // excludes writers while saving. read() expects a graph resized for at
  // least `size` nodes and stores what it reads unchecked: call validate()
  // once the data's checksum has been verified. Data written before copies
  // existed (with_copies false) has no ring word in its layer-0 rows.
  void write(ByteWriter& out, std::size_t size) const;
  void read(ByteReader& in, std::size_t size, bool with_copies);
  void validate(std::size_t size, const std::string& what) const;

 private:
  static constexpr std::size_t kLockStripes = 1024;
  static constexpr std::uint64_t kNoEntry = ~std::uint64_t{0};
  static constexpr int kMaxLevel = 30;
  static constexpr std::uint8_t kCopy = 0xff;  // levels_ of a copy
  static constexpr std::size_t kMaxListLength = 512;  // 2 * M at most
  // Filters letting through this share of the nodes or more walk through
  // every node ("Filtered search" above). Measured on 50k x 384, M 16
  // (single runs, noisy), QPS at recall 0.95: the two-hop walk 20-35%
  // faster at 15-20% allowed, both about the same at 25%, the full walk
  // 0-30% faster at 30-50% (at 30%, 2,289 QPS at recall 0.953 against
  // 1,777 at 0.963 in one collection-level run).
  static constexpr double kTwoHopMaxShare = 0.25;
  // Lists' worth of accepted nodes two hops must reach for a two-hop walk.
  static constexpr double kTwoHopMinLists = 1.5;
  // Nodes walks_two_hops() checks: a few microseconds per search, and a
  // share near the two-hop floor (4.7% at M 16) is then known to +-0.7%.
  static constexpr std::size_t kShareSamples = 1024;

  std::size_t max_links(int level) const { return level == 0 ? 2 * params_.M : params_.M; }
  std::size_t upper_stride() const { return 1 + params_.M; }
  // Highest level node is linked on; -1 for a copy (linked on none).
  int top_level(std::uint32_t node) const { return is_copy(node) ? -1 : levels_[node]; }
  // Layer 0 row: [next node of the ring, then node's layer-0 links].
  std::uint32_t* level0_row(std::uint32_t node) { return level0_.data() + std::size_t{node} * level0_stride_; }
  const std::uint32_t* level0_row(std::uint32_t node) const {
    return level0_.data() + std::size_t{node} * level0_stride_;
  }
  // [count, id_0, ..., id_{max-1}] for node at level.
  std::uint32_t* links(std::uint32_t node, int level);
  const std::uint32_t* links(std::uint32_t node, int level) const;
  bool has_copies(std::uint32_t node) const { return next_copy(node) != node; }
  // Whether the filter accepts one of node's copies, reading its ring only
  // if ring_heads_ says it may head one: cheap enough for a walk to ask of
  // every node it passes without scoring.
  bool may_return_a_copy(std::uint32_t node, const ResultFilter& filter) const {
    return test_bit_atomic(ring_heads_.data(), node) && accepts_a_copy(node, filter);
  }
  // Sets ring_heads_ from the rings of the first `size` nodes.
  void mark_ring_heads(std::size_t size);
  // Whether the filter accepts one of head's copies.
  bool accepts_a_copy(std::uint32_t head, const ResultFilter& filter) const;
  // How many results heads (walk_layer's) stand for: those accepted and
  // their accepted copies, counted up to limit.
  std::size_t results_of(const std::vector<Neighbor>& heads, const ResultFilter& filter, std::size_t limit) const;
  // Whether links to node may be dropped for live ones: it is deleted and
  // heads no ring (a deleted head still leads to its copies, which may
  // not be; compaction sorts those out).
  bool droppable(std::uint32_t node, const std::uint64_t* deleted) const;
  std::mutex& lock_for(std::uint32_t node) const { return node_locks_[node % kLockStripes]; }
  void set_entry(std::uint32_t node, int level);

  std::uint32_t greedy_descent(const DistanceComputer& distance, std::uint32_t start, int from_level,
                               int to_level) const;
  // Which neighbours a layer walk scores, a template argument so that the
  // walk without `allowed` pays nothing for the choice.
  enum class Walk {
    kEveryNode,     // every unvisited neighbour (HNSW)
    kAcceptedNodes  // gather_accepted's (a filter with `allowed`, layer 0)
  };
  template <Walk walk>
  std::vector<Neighbor> walk_layer(const DistanceComputer& distance, std::uint32_t start, std::size_t ef,
                                   int level, const ResultFilter& filter, VisitedSet& visited) const;
  // Whether search() walks layer 0 two hops at a time for this filter
  // ("Filtered search" above), judged on an even sample of the nodes.
  bool walks_two_hops(const ResultFilter& filter) const;
  std::vector<Neighbor> walk_layer0(const DistanceComputer& distance, std::uint32_t start, std::size_t ef,
                                    const ResultFilter& filter, bool two_hops, VisitedSet& visited) const;
  // The nodes a two-hop walk scores from node's layer-0 list ("Filtered
  // search" above), marked visited, into out (room for 2 * kMaxListLength):
  // its unvisited neighbours that the filter accepts (or accepts a copy
  // of), then those of its other neighbours' lists, each neighbour stepped
  // through marked visited, until there are as many as a full list. Returns
  // how many (filtered_walk.cpp).
  std::size_t gather_accepted(std::uint32_t node, const ResultFilter& filter, VisitedSet& visited,
                              std::uint32_t* out) const;
  // The unvisited nodes of a layer-0 list into out, their labels prefetched
  // for the filter (filtered_walk.cpp).
  std::size_t unvisited_of(const std::uint32_t* list, const ResultFilter& filter, const VisitedSet& visited,
                           std::uint32_t* out) const;
  // Every cache line of node's layer-0 row (the ring word, the count and
  // the links span up to three).
  void prefetch_level0_row(std::uint32_t node) const {
    const char* row = reinterpret_cast<const char*>(level0_row(node));
    const std::size_t bytes = level0_stride_ * sizeof(std::uint32_t);
    for (std::size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(row + offset);
    __builtin_prefetch(row + bytes - 1);
  }
  // The heuristic: candidates (closest first) are added to `kept` (links
  // already chosen) while they point in new directions, up to max_count.
  std::vector<std::uint32_t> select_neighbors(const DistanceComputer& distance,
                                              const std::vector<Neighbor>& sorted_candidates, std::size_t max_count,
                                              std::vector<std::uint32_t> kept = {}) const;
  void connect(std::uint32_t from, std::uint32_t to, int level, const DistanceComputer& distance,
               const std::uint64_t* deleted);
  void write_links(std::uint32_t node, int level, const std::vector<std::uint32_t>& ids);

  HnswParams params_;
  double level_scale_;
  std::size_t level0_stride_;
  AlignedVector<std::uint32_t> level0_;                    // capacity x (2 + 2M)
  std::vector<std::unique_ptr<std::uint32_t[]>> upper_;    // per node, levels 1..L
  std::vector<std::uint8_t> levels_;
  // Bits over nodes, set once a node heads a ring (add_copy; renumber() and
  // read() recompute them). A hint: a set bit may outlive its ring.
  std::vector<std::uint64_t> ring_heads_;
  std::atomic<std::uint64_t> entry_{kNoEntry};             // (level << 32) | node
  std::mutex entry_mutex_;
  mutable std::array<std::mutex, kLockStripes> node_locks_;
};

}  // namespace vecdb
