#include "json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace cnncore::json {

const Value* Value::find(const std::string& key) const {
  if (type != Type::Object) return nullptr;
  for (const auto& kv : object)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const char* Value::type_name() const {
  switch (type) {
    case Type::Null: return "null";
    case Type::Bool: return "a bool";
    case Type::Number: return "a number";
    case Type::String: return "a string";
    case Type::Array: return "an array";
    case Type::Object: return "an object";
  }
  return "?";
}

Value Value::from_bool(bool b) {
  Value v;
  v.type = Type::Bool;
  v.boolean = b;
  return v;
}
Value Value::from_int(int64_t i) {
  Value v;
  v.type = Type::Number;
  v.number = static_cast<double>(i);
  v.is_integer = true;
  v.integer = i;
  return v;
}
Value Value::from_double(double d) {
  Value v;
  v.type = Type::Number;
  v.number = d;
  return v;
}
Value Value::from_string(std::string s) {
  Value v;
  v.type = Type::String;
  v.string = std::move(s);
  return v;
}
Value Value::make_array(std::vector<Value> items) {
  Value v;
  v.type = Type::Array;
  v.array = std::move(items);
  return v;
}
Value Value::make_object() {
  Value v;
  v.type = Type::Object;
  return v;
}
Value& Value::set(const std::string& key, Value v) {
  for (auto& kv : object)
    if (kv.first == key) return kv.second = std::move(v);
  object.emplace_back(key, std::move(v));
  return object.back().second;
}

namespace {

class Parser {
 public:
  Parser(const char* data, size_t size, const std::string& what)
      : p_(data), n_(size), what_(what) {}

  Value document() {
    skip_ws();
    Value v = value(0);
    skip_ws();
    if (i_ != n_) fail("unexpected data after the end of the document");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw ValueError(detail::concat(what_, ": invalid JSON at byte ", i_, ": ", msg));
  }
  bool at_end() const { return i_ >= n_; }
  char peek() const { return at_end() ? '\0' : p_[i_]; }
  void skip_ws() {
    while (!at_end() && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r'))
      ++i_;
  }
  void expect(char c) {
    if (at_end() || p_[i_] != c) fail(detail::concat("expected '", c, "'"));
    ++i_;
  }
  void literal(const char* word) {
    for (const char* w = word; *w; ++w, ++i_)
      if (at_end() || p_[i_] != *w) fail(detail::concat("expected '", word, "'"));
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail(detail::concat("nesting deeper than ", kMaxDepth, " levels"));
    if (at_end()) fail("unexpected end of the document");
    switch (p_[i_]) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return Value::from_string(string());
      case 't': literal("true"); return Value::from_bool(true);
      case 'f': literal("false"); return Value::from_bool(false);
      case 'n': literal("null"); return Value();
      default: return number();
    }
  }

  Value object(int depth) {
    Value v = Value::make_object();
    expect('{');
    skip_ws();
    if (peek() == '}') {
      ++i_;
      return v;
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') fail("expected a string key");
      std::string key = string();
      if (v.find(key)) fail(detail::concat("duplicate key \"", key, "\""));
      skip_ws();
      expect(':');
      skip_ws();
      v.object.emplace_back(std::move(key), value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}');
      return v;
    }
  }

  Value array(int depth) {
    Value v = Value::make_array();
    expect('[');
    skip_ws();
    if (peek() == ']') {
      ++i_;
      return v;
    }
    for (;;) {
      skip_ws();
      v.array.push_back(value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect(']');
      return v;
    }
  }

  unsigned hex4() {
    unsigned u = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      if (at_end()) fail("unexpected end inside a \\u escape");
      const char c = p_[i_];
      u <<= 4;
      if (c >= '0' && c <= '9') u |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') u |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') u |= unsigned(c - 'A' + 10);
      else fail("bad hex digit in a \\u escape");
    }
    return u;
  }

  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const char c = p_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) fail("unterminated escape");
      const char e = p_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair encodes one code point
            if (i_ + 1 >= n_ || p_[i_] != '\\' || p_[i_ + 1] != 'u') fail("lone surrogate");
            i_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("lone surrogate");
          }
          utf8(out, cp);
          break;
        }
        default: fail(detail::concat("bad escape '\\", e, "'"));
      }
    }
  }

  Value number() {
    const size_t start = i_;
    if (peek() == '-') ++i_;
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a value");
    if (peek() == '0') {
      ++i_;
    } else {
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    bool integral = true;
    if (peek() == '.') {
      integral = false;
      ++i_;
      if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit after '.'");
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit in the exponent");
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    // strtod/strtoll need a terminated string: copy the (already validated) token.
    const std::string token(p_ + start, i_ - start);
    Value v;
    v.type = Value::Type::Number;
    v.number = std::strtod(token.c_str(), nullptr);
    if (!std::isfinite(v.number)) fail(detail::concat("number ", token, " is out of range"));
    if (integral) {
      errno = 0;
      const long long ll = std::strtoll(token.c_str(), nullptr, 10);
      if (errno == 0) {
        v.is_integer = true;
        v.integer = static_cast<int64_t>(ll);
      }
    }
    return v;
  }

  const char* p_;
  size_t n_;
  size_t i_ = 0;
  const std::string& what_;
};

void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void dump_into(std::string& out, const Value& v) {
  switch (v.type) {
    case Value::Type::Null: out += "null"; break;
    case Value::Type::Bool: out += v.boolean ? "true" : "false"; break;
    case Value::Type::Number: {
      char buf[32];
      if (v.is_integer) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v.integer));
      else std::snprintf(buf, sizeof buf, "%.17g", v.number);
      out += buf;
      // A double that prints like an integer stays a float when read back by Python.
      if (!v.is_integer && std::string(buf).find_first_of(".eEn") == std::string::npos)
        out += ".0";
      break;
    }
    case Value::Type::String: dump_string(out, v.string); break;
    case Value::Type::Array:
      out += '[';
      for (size_t k = 0; k < v.array.size(); ++k) {
        if (k) out += ", ";
        dump_into(out, v.array[k]);
      }
      out += ']';
      break;
    case Value::Type::Object:
      out += '{';
      for (size_t k = 0; k < v.object.size(); ++k) {
        if (k) out += ", ";
        dump_string(out, v.object[k].first);
        out += ": ";
        dump_into(out, v.object[k].second);
      }
      out += '}';
      break;
  }
}

}  // namespace

Value parse(const char* data, size_t size, const std::string& what) {
  return Parser(data, size, what).document();
}

std::string dump(const Value& v) {
  std::string out;
  dump_into(out, v);
  return out;
}

}  // namespace cnncore::json
