// A small JSON reader and writer for model files (the graph and the safetensors header).
//
// The reader is meant for untrusted bytes: every access is bounds-checked, nesting is limited
// (kMaxDepth) so hostile input cannot exhaust the stack, and every failure is a ValueError that
// says what was wrong and at which byte ("<what>: invalid JSON at byte 17: expected ':'").
// Numbers are held as double (and as int64 when they are integers that fit), which is all a
// graph or a safetensors header needs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore::json {

constexpr int kMaxDepth = 64;

struct Value {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0.0;
  bool is_integer = false;  // number is an integer that fits in int64 (then integer holds it)
  int64_t integer = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in file order; keys unique

  bool is_null() const { return type == Type::Null; }
  bool is_object() const { return type == Type::Object; }
  bool is_array() const { return type == Type::Array; }
  bool is_string() const { return type == Type::String; }
  bool is_number() const { return type == Type::Number; }
  bool is_bool() const { return type == Type::Bool; }
  const Value* find(const std::string& key) const;  // nullptr when absent or not an object
  const char* type_name() const;

  static Value null() { return Value(); }
  static Value from_bool(bool b);
  static Value from_int(int64_t v);
  static Value from_double(double v);
  static Value from_string(std::string s);
  static Value make_array(std::vector<Value> items = {});
  static Value make_object();
  Value& set(const std::string& key, Value v);  // objects: replace or append
};

// Parses exactly one JSON value (surrounding whitespace allowed). what names the document in
// error messages ("model.cnn: graph").
Value parse(const char* data, size_t size, const std::string& what);
inline Value parse(const std::string& text, const std::string& what) {
  return parse(text.data(), text.size(), what);
}
// Compact JSON text; doubles round-trip (17 significant digits).
std::string dump(const Value& v);

}  // namespace cnncore::json
