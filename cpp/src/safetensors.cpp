#include "safetensors.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "json.hpp"

namespace cnncore::safetensors {

namespace {

// A header this large is not a model file; refuse it before allocating (safetensors caps it too).
constexpr uint64_t kMaxHeader = 100u << 20;

struct DTypeInfo {
  const char* name;
  size_t size;
};
const DTypeInfo kDTypes[] = {{"F32", 4}, {"I64", 8}, {"F64", 8}, {"F16", 2}, {"BF16", 2},
                             {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},  {"BOOL", 1}};

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <class T>
T load(const uint8_t* p) {  // little-endian, unaligned
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

Tensor decode(const std::string& dtype, const Shape& shape, const uint8_t* p, int64_t n) {
  if (dtype == "F32" || dtype == "F64" || dtype == "F16" || dtype == "BF16") {
    Tensor t = Tensor::empty(shape, DType::Float32);
    float* out = t.data<float>();
    if (dtype == "F32") {
      if (n) std::memcpy(out, p, size_t(n) * 4);
    } else {
      for (int64_t i = 0; i < n; ++i) {
        if (dtype == "F64") {
          out[i] = static_cast<float>(load<double>(p + 8 * i));
        } else if (dtype == "F16") {
          out[i] = half_to_float(load<uint16_t>(p + 2 * i));
        } else {
          const uint32_t bits = uint32_t(load<uint16_t>(p + 2 * i)) << 16;
          std::memcpy(out + i, &bits, 4);
        }
      }
    }
    return t;
  }
  Tensor t = Tensor::empty(shape, DType::Int64);
  int64_t* out = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == "I64") out[i] = load<int64_t>(p + 8 * i);
    else if (dtype == "I32") out[i] = load<int32_t>(p + 4 * i);
    else if (dtype == "I16") out[i] = load<int16_t>(p + 2 * i);
    else if (dtype == "I8") out[i] = load<int8_t>(p + i);
    else out[i] = p[i];  // U8, BOOL
  }
  return t;
}

uint64_t as_u64(const json::Value& v, const std::string& what, const char* field) {
  CNNCORE_CHECK_VALUE(v.is_number() && v.is_integer && v.integer >= 0, what, ": ", field,
                      " must hold non-negative integers, but has ",
                      v.is_number() ? std::to_string(v.number) : v.type_name());
  return static_cast<uint64_t>(v.integer);
}

}  // namespace

const std::string* File::find_metadata(const std::string& key) const {
  for (const auto& kv : metadata)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const Tensor* File::find_tensor(const std::string& name) const {
  for (const auto& kv : tensors)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

File parse(const uint8_t* data, size_t size, const std::string& what) {
  CNNCORE_CHECK_VALUE(size >= 8, what, ": not a safetensors file (", size,
                      " bytes, shorter than the 8-byte header length)");
  const uint64_t header_len = load<uint64_t>(data);
  CNNCORE_CHECK_VALUE(header_len <= kMaxHeader, what, ": header length ", header_len,
                      " is larger than the 100 MiB limit (damaged or not a safetensors file)");
  CNNCORE_CHECK_VALUE(header_len <= size - 8, what, ": truncated: the header claims ",
                      header_len, " bytes but only ", size - 8, " follow the length field");
  const json::Value header = json::parse(reinterpret_cast<const char*>(data + 8),
                                         static_cast<size_t>(header_len), what + ": header");
  CNNCORE_CHECK_VALUE(header.is_object(), what, ": the header must be a JSON object, but is ",
                      header.type_name());
  const uint8_t* body = data + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;

  File file;
  file.data_crc32 = crc32(body, static_cast<size_t>(body_size));
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& [name, entry] : header.object) {
    if (name == "__metadata__") {
      CNNCORE_CHECK_VALUE(entry.is_object(), what, ": __metadata__ must be an object of "
                          "strings, but is ", entry.type_name());
      for (const auto& [k, v] : entry.object) {
        CNNCORE_CHECK_VALUE(v.is_string(), what, ": __metadata__[\"", k,
                            "\"] must be a string, but is ", v.type_name());
        file.metadata.emplace_back(k, v.string);
      }
      continue;
    }
    const std::string where = what + ": tensor '" + name + "'";
    CNNCORE_CHECK_VALUE(entry.is_object(), where, " must be an object, but is ",
                        entry.type_name());
    const json::Value* dtype = entry.find("dtype");
    const json::Value* shape = entry.find("shape");
    const json::Value* offsets = entry.find("data_offsets");
    CNNCORE_CHECK_VALUE(dtype && dtype->is_string(), where, ": 'dtype' is missing or not a string");
    CNNCORE_CHECK_VALUE(shape && shape->is_array(), where, ": 'shape' is missing or not an array");
    CNNCORE_CHECK_VALUE(offsets && offsets->is_array() && offsets->array.size() == 2, where,
                        ": 'data_offsets' must be [begin, end]");
    size_t elem = 0;
    for (const auto& d : kDTypes)
      if (dtype->string == d.name) elem = d.size;
    CNNCORE_CHECK_VALUE(elem != 0, where, ": dtype '", dtype->string, "' is not supported "
                        "(F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    CNNCORE_CHECK_VALUE(shape->array.size() <= 16, where, ": ", shape->array.size(),
                        " dimensions is more than the 16 a tensor may have");
    Shape dims;
    uint64_t numel = 1;
    for (const auto& d : shape->array) {
      const uint64_t n = as_u64(d, where, "'shape'");
      CNNCORE_CHECK_VALUE(n <= (uint64_t(1) << 40) && (n == 0 || numel <= (uint64_t(1) << 40) / n),
                          where, ": shape ", json::dump(*shape), " has too many elements");
      numel *= n;
      dims.push_back(static_cast<int64_t>(n));
    }
    const uint64_t begin = as_u64(offsets->array[0], where, "'data_offsets'");
    const uint64_t end = as_u64(offsets->array[1], where, "'data_offsets'");
    CNNCORE_CHECK_VALUE(begin <= end && end <= body_size, where, ": data_offsets [", begin, ", ",
                        end, "] fall outside the ", body_size, " data bytes (truncated file?)");
    CNNCORE_CHECK_VALUE(end - begin == numel * elem, where, ": data_offsets span ", end - begin,
                        " bytes but shape ", json::dump(*shape), " of ", dtype->string, " needs ",
                        numel * elem);
    spans.emplace_back(begin, end);
    file.tensors.emplace_back(name, decode(dtype->string, dims, body + begin,
                                           static_cast<int64_t>(numel)));
  }
  std::sort(spans.begin(), spans.end());
  for (size_t k = 1; k < spans.size(); ++k)
    CNNCORE_CHECK_VALUE(spans[k].first >= spans[k - 1].second, what,
                        ": two tensors' data_offsets overlap (damaged file)");
  return file;
}

File read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CNNCORE_CHECK_VALUE(in.good(), "cannot open ", path, " for reading (no such file, or no "
                      "permission)");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  CNNCORE_CHECK_VALUE(size >= 0, "cannot read ", path);
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size) in.read(reinterpret_cast<char*>(bytes.data()), size);
  CNNCORE_CHECK_VALUE(in.good() || in.eof(), "cannot read ", path);
  return parse(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> serialize(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::vector<std::pair<std::string, std::string>>& metadata) {
  json::Value header = json::Value::make_object();
  if (!metadata.empty()) {
    json::Value meta = json::Value::make_object();
    for (const auto& [k, v] : metadata) meta.set(k, json::Value::from_string(v));
    header.set("__metadata__", std::move(meta));
  }
  std::vector<Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    CNNCORE_CHECK_TYPE(t.defined(), "save: tensor '", name, "' is undefined");
    const Tensor c = t.to_strided().contiguous();
    const uint64_t nbytes = uint64_t(c.numel()) * dtype_size(c.dtype());
    json::Value entry = json::Value::make_object();
    entry.set("dtype", json::Value::from_string(c.dtype() == DType::Float32 ? "F32" : "I64"));
    json::Value shape = json::Value::make_array();
    for (int64_t d : c.shape()) shape.array.push_back(json::Value::from_int(d));
    entry.set("shape", std::move(shape));
    entry.set("data_offsets", json::Value::make_array(
                                  {json::Value::from_int(int64_t(offset)),
                                   json::Value::from_int(int64_t(offset + nbytes))}));
    header.set(name, std::move(entry));
    offset += nbytes;
    contiguous.push_back(c);
  }
  std::string text = json::dump(header);
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as safetensors
  std::vector<uint8_t> out(8 + text.size() + offset);
  const uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* p = out.data() + 8 + text.size();
  for (const Tensor& c : contiguous) {
    const size_t nbytes = size_t(c.numel()) * dtype_size(c.dtype());
    if (nbytes) std::memcpy(p, c.raw_data(), nbytes);
    p += nbytes;
  }
  return out;
}

void atomic_write(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    CNNCORE_CHECK_VALUE(out.good(), "save: cannot open ", tmp, " for writing");
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    out.flush();
    if (!out.good()) {
      out.close();
      std::remove(tmp.c_str());
      throw ValueError(detail::concat("save: writing ", tmp, " failed (disk full?)"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw ValueError(detail::concat("save: cannot rename ", tmp, " to ", path));
  }
}

uint32_t crc32(const uint8_t* data, size_t size) {
  static uint32_t table[256] = {};
  static const bool filled = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)filled;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace cnncore::safetensors
