// Reading and writing safetensors (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
// {str: str}}, then the tensor bytes. The reader takes untrusted bytes: the header length, every
// shape, dtype and offset is checked against the buffer before a byte is copied, and every
// problem is a ValueError naming the file, the tensor and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore::safetensors {

struct File {
  std::vector<std::pair<std::string, std::string>> metadata;  // __metadata__, in file order
  std::vector<std::pair<std::string, Tensor>> tensors;        // in header order; owned copies
  uint32_t data_crc32 = 0;  // CRC-32 of the bytes after the header (the tensor data)
  const std::string* find_metadata(const std::string& key) const;
  const Tensor* find_tensor(const std::string& name) const;
};

// Parses a whole file held in memory. what names it in messages (usually the path).
// Float32 and int64 tensors are read as they are; F64/F16/BF16 become float32 and the other
// integer types int64, as cnncore.load does in Python.
File parse(const uint8_t* data, size_t size, const std::string& what);
File read_file(const std::string& path);

// The bytes of a safetensors file holding tensors (float32 or int64, any layout) and metadata,
// in the given order.
std::vector<uint8_t> serialize(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::vector<std::pair<std::string, std::string>>& metadata);
// Writes bytes to path through a temporary file and a rename, so a failed write never leaves a
// half-written file at path.
void atomic_write(const std::string& path, const std::vector<uint8_t>& bytes);

uint32_t crc32(const uint8_t* data, size_t size);

}  // namespace cnncore::safetensors
