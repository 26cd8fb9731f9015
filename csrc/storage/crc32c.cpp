// CRC-32C: a slicing-by-8 table for any CPU and the SSE4.2 crc32 instruction,
// compiled for that ISA with a target attribute (no -march flag) and chosen
// at run time.
#include "storage/crc32c.h"

#include <array>
#include <atomic>
#include <cstring>

#include "common/error.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <nmmintrin.h>
#define VECDB_HAVE_SSE42_CRC 1
#endif

namespace vecdb {
namespace {

constexpr std::uint32_t kPolynomial = 0x82F63B78u;  // Castagnoli, bit-reflected

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

Tables make_tables() {
  Tables tables{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (kPolynomial & (0u - (crc & 1u)));
    tables[0][byte] = crc;
  }
  for (std::size_t byte = 0; byte < 256; ++byte) {
    for (std::size_t slice = 1; slice < 8; ++slice) {
      const std::uint32_t previous = tables[slice - 1][byte];
      tables[slice][byte] = (previous >> 8) ^ tables[0][previous & 0xFF];
    }
  }
  return tables;
}

const Tables& tables() {
  static const Tables built = make_tables();
  return built;
}

std::uint32_t crc32c_portable(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  const Tables& t = tables();
  crc = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint32_t low, high;
    std::memcpy(&low, p, 4);
    std::memcpy(&high, p + 4, 4);
    low ^= crc;  // little-endian: the first byte is the low byte
    crc = t[7][low & 0xFF] ^ t[6][(low >> 8) & 0xFF] ^ t[5][(low >> 16) & 0xFF] ^ t[4][low >> 24] ^
          t[3][high & 0xFF] ^ t[2][(high >> 8) & 0xFF] ^ t[1][(high >> 16) & 0xFF] ^ t[0][high >> 24];
  }
  for (; n > 0; ++p, --n) crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xFF];
  return ~crc;
}

#ifdef VECDB_HAVE_SSE42_CRC
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::uint32_t crc, const std::uint8_t* p,
                                                              std::size_t n) {
  std::uint64_t state = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    state = _mm_crc32_u64(state, word);
  }
  std::uint32_t low = static_cast<std::uint32_t>(state);
  for (; n > 0; ++p, --n) low = _mm_crc32_u8(low, *p);
  return ~low;
}

bool sse42_supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

using Function = std::uint32_t (*)(std::uint32_t, const std::uint8_t*, std::size_t);

struct Implementation {
  const char* name;
  Function function;
};

std::vector<Implementation> usable() {
  std::vector<Implementation> found{{"portable", crc32c_portable}};
#ifdef VECDB_HAVE_SSE42_CRC
  if (sse42_supported()) found.push_back({"sse4.2", crc32c_sse42});
#endif
  return found;
}

std::atomic<std::size_t>& active() {
  static std::atomic<std::size_t> index{usable().size() - 1};
  return index;
}

const std::vector<Implementation>& implementations() {
  static const std::vector<Implementation> found = usable();
  return found;
}

}  // namespace

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) {
  return implementations()[active().load(std::memory_order_relaxed)].function(
      crc, static_cast<const std::uint8_t*>(data), size);
}

std::vector<std::string> crc32c_implementations() {
  std::vector<std::string> names;
  for (const Implementation& implementation : implementations()) names.emplace_back(implementation.name);
  return names;
}

std::string crc32c_implementation() { return implementations()[active().load()].name; }

void set_crc32c_implementation(const std::string& name) {
  const std::vector<Implementation>& found = implementations();
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (name == found[i].name) {
      active().store(i);
      return;
    }
  }
  VECDB_REQUIRE(false, "CRC-32C implementation '" + name + "' is not available on this CPU");
}

}  // namespace vecdb
