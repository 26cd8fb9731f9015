// The inverted index's snapshot form: its live points' terms and weights.
//
// Format (little-endian), then ByteWriter's checksum of everything before it:
//   u32 magic "VTXI", u32 version, u8 scoring, f32 k1, f32 b,
//   u32 terms, then per term: u32 byte length, the bytes,
//   u64 points, then per point (in document order): i64 label, u32 terms,
//   then per term: u32 term number, f32 weight.
// Loading rebuilds the posting lists and their bounds through set(), which
// checks every value again: a file that passed its checksum but holds what
// set() refuses is an error, not an index.
#include <limits>
#include <mutex>

#include "text/inverted_index.h"

namespace vecdb {
namespace {

constexpr std::uint32_t kMagic = 0x49585456;  // "VTXI"
constexpr std::uint32_t kVersion = 1;

}  // namespace

void InvertedIndex::save(Sink& sink) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  ByteWriter out(sink);
  out.put(kMagic);
  out.put(kVersion);
  out.put(static_cast<std::uint8_t>(scoring_ == TermScoring::Bm25 ? 0 : 1));
  out.put(bm25_.k1);
  out.put(bm25_.b);
  // Only the terms live points hold, numbered in order of first use.
  std::vector<std::uint32_t> number(lists_.size(), std::numeric_limits<std::uint32_t>::max());
  std::vector<const std::string*> names(lists_.size(), nullptr);
  for (const auto& [term, id] : term_ids_) names[id] = &term;
  std::vector<std::uint32_t> used;
  for (std::size_t doc = 0; doc < documents_.size(); ++doc) {
    if (dead_[doc]) continue;
    const Document& document = documents_[doc];
    for (std::uint32_t j = 0; j < document.count; ++j) {
      const std::uint32_t id = term_refs_[document.first + j];
      if (number[id] == std::numeric_limits<std::uint32_t>::max()) {
        number[id] = static_cast<std::uint32_t>(used.size());
        used.push_back(id);
      }
    }
  }
  out.put(static_cast<std::uint32_t>(used.size()));
  for (const std::uint32_t id : used) {
    out.put(static_cast<std::uint32_t>(names[id]->size()));
    out.put_bytes(names[id]->data(), names[id]->size());
  }
  out.put(static_cast<std::uint64_t>(current_.size()));
  for (std::size_t doc = 0; doc < documents_.size(); ++doc) {
    if (dead_[doc]) continue;
    const Document& document = documents_[doc];
    out.put(document.label);
    out.put(document.count);
    for (std::uint32_t j = 0; j < document.count; ++j) {
      const std::uint32_t id = term_refs_[document.first + j];
      out.put(number[id]);
      // The weight of this term in this document: its posting's.
      const PostingList& list = lists_[id];
      const auto at = std::lower_bound(list.docs.begin(), list.docs.end(), static_cast<std::uint32_t>(doc));
      out.put(list.weights[static_cast<std::size_t>(at - list.docs.begin())]);
    }
  }
  out.finish();
}

std::unique_ptr<InvertedIndex> InvertedIndex::load(Source& source) {
  ByteReader in(source, "text index snapshot");
  VECDB_REQUIRE(in.get<std::uint32_t>() == kMagic, in.what() + " is not a text index snapshot");
  const auto version = in.get<std::uint32_t>();
  VECDB_REQUIRE(version == kVersion, in.what() + " has format version " + std::to_string(version) +
                                         "; this build reads version " + std::to_string(kVersion));
  const auto scoring = in.get<std::uint8_t>();
  VECDB_REQUIRE(scoring <= 1, in.what() + " names an unknown scoring");
  const Bm25Parameters bm25{in.get<float>(), in.get<float>()};
  const auto term_count = in.get<std::uint32_t>();
  std::vector<std::string> names;
  names.reserve(std::min<std::uint64_t>(term_count, in.remaining() / sizeof(std::uint32_t)));
  for (std::uint32_t t = 0; t < term_count; ++t) {
    const auto length = in.get<std::uint32_t>();
    std::string name(std::min<std::uint64_t>(length, in.remaining()), '\0');
    VECDB_REQUIRE(name.size() == length, in.what() + " is truncated or corrupt (a term runs past its end)");
    in.get_bytes(name.data(), name.size());
    names.push_back(std::move(name));
  }
  const auto points = in.get<std::uint64_t>();
  // Each point takes at least 12 bytes: a count past what is left is damage, not an allocation to attempt.
  VECDB_REQUIRE(points <= in.remaining() / 12, in.what() + " is truncated or corrupt (too many points)");
  std::vector<std::int64_t> labels(points);
  std::vector<std::int64_t> offsets(points + 1, 0);
  std::vector<std::string> terms;
  std::vector<float> weights;
  for (std::uint64_t i = 0; i < points; ++i) {
    labels[i] = in.get<std::int64_t>();
    const auto count = in.get<std::uint32_t>();
    VECDB_REQUIRE(count <= in.remaining() / 8, in.what() + " is truncated or corrupt (a point's terms)");
    for (std::uint32_t j = 0; j < count; ++j) {
      const auto term = in.get<std::uint32_t>();
      VECDB_REQUIRE(term < names.size(), in.what() + " is corrupt (a term number out of range)");
      terms.push_back(names[term]);
      weights.push_back(in.get<float>());
    }
    offsets[i + 1] = static_cast<std::int64_t>(terms.size());
  }
  in.verify_checksum();
  auto index = std::make_unique<InvertedIndex>(scoring == 0 ? TermScoring::Bm25 : TermScoring::Dot, bm25);
  index->set(labels.data(), labels.size(), offsets.data(), terms, weights.data());
  VECDB_REQUIRE(index->size() == points, in.what() + " is corrupt (a label appears twice)");
  return index;
}

}  // namespace vecdb
