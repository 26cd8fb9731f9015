// Writes to the inverted index: setting and removing points, compaction.
#include "text/inverted_index.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "common/error.h"

namespace vecdb {

namespace {

// Compact once at least this many documents are dead and they are as many as
// the live ones: a search then reads at most twice the postings it needs,
// and compaction's cost (one pass over every list) is paid once per as many
// retirements as there are live documents.
constexpr std::size_t kMinDeadToCompact = 1024;

}  // namespace

void PostingBounds::include(float weight, float length, bool first) {
  if (first) {
    max_weight = min_weight = weight;
    min_length = length;
  } else {
    max_weight = std::max(max_weight, weight);
    min_weight = std::min(min_weight, weight);
    min_length = std::min(min_length, length);
  }
}

void PostingList::append(std::uint32_t doc, float weight, float length) {
  const bool new_block = docs.size() % kPostingBlock == 0;
  bounds.include(weight, length, docs.empty());
  if (new_block) {
    blocks.emplace_back();
    block_last.push_back(doc);
  }
  blocks.back().include(weight, length, new_block);
  block_last.back() = doc;
  docs.push_back(doc);
  weights.push_back(weight);
}

InvertedIndex::InvertedIndex(TermScoring scoring, Bm25Parameters bm25) : scoring_(scoring), bm25_(bm25) {
  VECDB_REQUIRE(std::isfinite(bm25.k1) && bm25.k1 >= 0.0f, "bm25 k1 must be a finite number >= 0");
  VECDB_REQUIRE(std::isfinite(bm25.b) && bm25.b >= 0.0f && bm25.b <= 1.0f, "bm25 b must be between 0 and 1");
}

std::uint32_t InvertedIndex::term_id(const std::string& term) {
  const auto found = term_ids_.find(term);
  if (found != term_ids_.end()) return found->second;
  VECDB_REQUIRE(lists_.size() < std::numeric_limits<std::uint32_t>::max(), "too many distinct terms");
  const auto id = static_cast<std::uint32_t>(lists_.size());
  term_ids_.emplace(term, id);
  lists_.emplace_back();
  return id;
}

void InvertedIndex::set(const std::int64_t* labels, std::size_t n, const std::int64_t* offsets,
                        const std::vector<std::string>& terms, const float* weights) {
  // Checked before anything changes: a failed batch writes nothing.
  VECDB_REQUIRE(offsets[0] == 0 && static_cast<std::size_t>(offsets[n]) == terms.size(),
                "term offsets must start at 0 and end at the number of terms");
  for (std::size_t i = 0; i < n; ++i) {
    VECDB_REQUIRE(offsets[i] <= offsets[i + 1], "term offsets must not decrease");
  }
  for (std::size_t j = 0; j < terms.size(); ++j) {
    VECDB_REQUIRE(std::isfinite(weights[j]), "term weights must be finite");
    VECDB_REQUIRE(scoring_ != TermScoring::Bm25 || weights[j] > 0.0f, "term frequencies must be > 0");
  }
  std::unique_lock<std::shared_mutex> lock(mutex_);
  VECDB_REQUIRE(documents_.size() + n < std::numeric_limits<std::uint32_t>::max() &&
                    term_refs_.size() + terms.size() < std::numeric_limits<std::uint32_t>::max(),
                "the inverted index is full");
  for (std::size_t i = 0; i < n; ++i) {
    const auto held = current_.find(labels[i]);
    if (held != current_.end()) {
      retire(held->second);
      current_.erase(held);
    }
    const auto begin = static_cast<std::size_t>(offsets[i]);
    const auto end = static_cast<std::size_t>(offsets[i + 1]);
    if (begin == end) continue;
    const auto doc = static_cast<std::uint32_t>(documents_.size());
    float length = 0.0f;
    for (std::size_t j = begin; j < end; ++j) length += weights[j];
    const auto first = static_cast<std::uint32_t>(term_refs_.size());
    for (std::size_t j = begin; j < end; ++j) {
      const std::uint32_t id = term_id(terms[j]);
      term_refs_.push_back(id);
      PostingList& list = lists_[id];
      list.append(doc, weights[j], length);
      if (list.live++ == 0) ++live_terms_;
    }
    documents_.push_back({labels[i], length, first, static_cast<std::uint32_t>(end - begin)});
    dead_.push_back(0);
    lengths_.push_back(length);
    current_.emplace(labels[i], doc);
    live_length_ += length;
  }
  if (compaction_due()) compact();
}

void InvertedIndex::remove(const std::int64_t* labels, std::size_t n) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  for (std::size_t i = 0; i < n; ++i) {
    const auto held = current_.find(labels[i]);
    if (held == current_.end()) continue;
    retire(held->second);
    current_.erase(held);
  }
  if (compaction_due()) compact();
}

void InvertedIndex::retire(std::uint32_t doc) {
  const Document& document = documents_[doc];
  dead_[doc] = 1;
  ++dead_count_;
  live_length_ -= document.length;
  for (std::uint32_t r = document.first; r < document.first + document.count; ++r) {
    if (--lists_[term_refs_[r]].live == 0) --live_terms_;
  }
}

bool InvertedIndex::compaction_due() const {
  return dead_count_ >= kMinDeadToCompact && dead_count_ * 2 >= documents_.size();
}

void InvertedIndex::compact() {
  // Live documents keep their order, so every list stays sorted.
  std::vector<std::uint32_t> renumbered(documents_.size(), std::numeric_limits<std::uint32_t>::max());
  std::vector<Document> documents;
  std::vector<std::uint32_t> term_refs;
  documents.reserve(documents_.size() - dead_count_);
  for (std::uint32_t doc = 0; doc < documents_.size(); ++doc) {
    if (dead_[doc]) continue;
    Document kept = documents_[doc];
    renumbered[doc] = static_cast<std::uint32_t>(documents.size());
    const std::uint32_t first = static_cast<std::uint32_t>(term_refs.size());
    term_refs.insert(term_refs.end(), term_refs_.begin() + kept.first, term_refs_.begin() + kept.first + kept.count);
    kept.first = first;
    documents.push_back(kept);
  }
  for (PostingList& list : lists_) {
    PostingList kept;
    kept.live = list.live;
    for (std::size_t i = 0; i < list.docs.size(); ++i) {
      const std::uint32_t doc = renumbered[list.docs[i]];
      if (doc != std::numeric_limits<std::uint32_t>::max()) kept.append(doc, list.weights[i], documents[doc].length);
    }
    list = std::move(kept);
  }
  for (auto& entry : current_) entry.second = renumbered[entry.second];
  documents_ = std::move(documents);
  term_refs_ = std::move(term_refs);
  dead_.assign(documents_.size(), 0);
  lengths_.resize(documents_.size());
  for (std::size_t doc = 0; doc < documents_.size(); ++doc) lengths_[doc] = documents_[doc].length;
  dead_count_ = 0;
}

CorpusStatistics InvertedIndex::statistics(const std::vector<std::string>& terms) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  CorpusStatistics found;
  found.points = static_cast<double>(current_.size());
  found.total_length = live_length_;
  found.document_frequencies.reserve(terms.size());
  for (const std::string& term : terms) {
    const auto id = term_ids_.find(term);
    found.document_frequencies.push_back(id == term_ids_.end() ? 0.0 : lists_[id->second].live);
  }
  return found;
}

std::size_t InvertedIndex::size() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return current_.size();
}

std::size_t InvertedIndex::vocabulary() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return live_terms_;
}

bool InvertedIndex::contains(std::int64_t label) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return current_.count(label) != 0;
}

std::size_t InvertedIndex::memory_bytes() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  std::size_t bytes = lists_.capacity() * sizeof(PostingList) + documents_.capacity() * sizeof(Document) +
                      dead_.capacity() + lengths_.capacity() * sizeof(float) +
                      term_refs_.capacity() * sizeof(std::uint32_t);
  for (const PostingList& list : lists_) {
    bytes += list.docs.capacity() * sizeof(std::uint32_t) + list.weights.capacity() * sizeof(float) +
             list.blocks.capacity() * sizeof(PostingBounds) + list.block_last.capacity() * sizeof(std::uint32_t);
  }
  // Hash tables: a node per entry (key, value, next pointer) plus the bucket array.
  for (const auto& entry : term_ids_) bytes += entry.first.capacity() + sizeof(entry) + sizeof(void*);
  bytes += term_ids_.bucket_count() * sizeof(void*);
  bytes += current_.size() * (sizeof(std::pair<std::int64_t, std::uint32_t>) + sizeof(void*)) +
           current_.bucket_count() * sizeof(void*);
  return bytes;
}

}  // namespace vecdb
