// CRC-32C (Castagnoli), the checksum on every value vecdb stores in LMDB.
//
// Chosen for stored values because it is the storage standard (iSCSI, ext4
// metadata, RocksDB, LevelDB): it detects every error of up to 3 bits in
// values of the sizes vecdb stores and every burst up to 32 bits long, and
// x86 has an instruction for it (SSE4.2), picked at run time; the portable
// path is a slicing-by-8 table. Chaining holds:
// crc32c(crc32c(0, a), b) == crc32c(0, a || b).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vecdb {

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size);

// Implementations this CPU can run ("portable", and "sse4.2" on x86 with it),
// slowest first; the fastest is used unless another is chosen (for tests).
std::vector<std::string> crc32c_implementations();
std::string crc32c_implementation();
void set_crc32c_implementation(const std::string& name);

}  // namespace vecdb
