// The graph engine behind cnncore::Model: the graph JSON is parsed and validated once (every
// value defined before use, every parameter present with the right dtype, every attribute of the
// right type), then forward/backward walk the nodes calling the op functions of cnncore/ops.
// Each node mirrors the Python function or module it was traced from (python/cnncore/_ops and
// nn/): the same kernels, the same argument handling, so results agree with Python.
#include "cnncore/graph.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include "cnncore/ops.hpp"
#include "cnncore/runtime.hpp"
#include "json.hpp"
#include "safetensors.hpp"

namespace cnncore {

namespace {

using json::Value;

constexpr int kFormatVersion = 1;
const char* const kGraphKey = "cnncore.graph";
const char* const kCrcKey = "cnncore.crc32";
const char* const kOrderKey = "cnncore.order";
const char* const kFormatKey = "cnncore.format";

enum class Op {
  Conv2d, ConvTranspose2d, Linear, BatchNorm, Hardtanh, Relu, LeakyRelu, Sigmoid, Tanh, Softmax,
  LogSoftmax, MaxPool, AvgPool, AdaptiveAvg, AdaptiveMax, Flatten, Reshape, Identity, Dropout,
  Lrn, Interpolate, Pad, Binary, Cat, Sum, Mean,
};

struct OpInfo {
  const char* name;
  const char* kind;
  Op op;
};
// Every op a graph may hold: the cnncore.nn classes (kind module) and the functions the tracer
// records (kind function; see cnncore.graph.FUNCTIONS).
const OpInfo kOps[] = {
    {"Conv2d", "module", Op::Conv2d}, {"ConvTranspose2d", "module", Op::ConvTranspose2d},
    {"Linear", "module", Op::Linear}, {"BatchNorm1d", "module", Op::BatchNorm},
    {"BatchNorm2d", "module", Op::BatchNorm}, {"ReLU", "module", Op::Relu},
    {"ReLU6", "module", Op::Hardtanh}, {"LeakyReLU", "module", Op::LeakyRelu},
    {"Sigmoid", "module", Op::Sigmoid}, {"Tanh", "module", Op::Tanh},
    {"Softmax", "module", Op::Softmax}, {"LogSoftmax", "module", Op::LogSoftmax},
    {"MaxPool2d", "module", Op::MaxPool}, {"AvgPool2d", "module", Op::AvgPool},
    {"AdaptiveAvgPool2d", "module", Op::AdaptiveAvg},
    {"AdaptiveMaxPool2d", "module", Op::AdaptiveMax}, {"Flatten", "module", Op::Flatten},
    {"Identity", "module", Op::Identity}, {"Dropout", "module", Op::Dropout},
    {"Dropout2d", "module", Op::Dropout}, {"LocalResponseNorm", "module", Op::Lrn},
    {"Upsample", "module", Op::Interpolate}, {"ZeroPad2d", "module", Op::Pad},
    {"relu", "function", Op::Relu}, {"relu6", "function", Op::Hardtanh},
    {"hardtanh", "function", Op::Hardtanh}, {"leaky_relu", "function", Op::LeakyRelu},
    {"sigmoid", "function", Op::Sigmoid}, {"tanh", "function", Op::Tanh},
    {"softmax", "function", Op::Softmax}, {"log_softmax", "function", Op::LogSoftmax},
    {"max_pool2d", "function", Op::MaxPool}, {"avg_pool2d", "function", Op::AvgPool},
    {"adaptive_avg_pool2d", "function", Op::AdaptiveAvg},
    {"adaptive_max_pool2d", "function", Op::AdaptiveMax}, {"flatten", "function", Op::Flatten},
    {"reshape", "function", Op::Reshape}, {"view", "function", Op::Reshape},
    {"dropout", "function", Op::Dropout}, {"dropout2d", "function", Op::Dropout},
    {"interpolate", "function", Op::Interpolate}, {"pad", "function", Op::Pad},
    {"add", "function", Op::Binary}, {"sub", "function", Op::Binary},
    {"mul", "function", Op::Binary}, {"div", "function", Op::Binary},
    {"cat", "function", Op::Cat}, {"sum", "function", Op::Sum}, {"mean", "function", Op::Mean},
};

// A node, parsed and resolved once.
struct Node {
  std::string name, op_name, kind, module;
  Op op = Op::Identity;
  std::vector<int> inputs, outputs;                          // value indices
  std::vector<std::pair<std::string, int>> params;           // local name -> state index
  int weight = -1, bias = -1, running_mean = -1, running_var = -1, batches = -1;

  Conv2dOptions conv;
  int64_t out_pad_h = 0, out_pad_w = 0;
  Pool2dOptions pool;
  bool return_indices = false;
  std::optional<int64_t> out_h, out_w;  // adaptive pooling; none = keep the input's size
  double lo = 0, hi = 0, slope = 0;     // hardtanh bounds, leaky slope
  std::optional<int64_t> dim;           // softmax/cat dim; none = torch's legacy choice
  int64_t start_dim = 0, end_dim = -1;
  Shape shape;                          // reshape
  double p = 0;
  bool channel_wise = false;
  int64_t lrn_size = 1;
  double alpha = 1e-4, beta = 0.75, k = 1.0;
  double eps = 1e-5, momentum = 0.1;
  bool momentum_none = false, track_running_stats = true, affine = true;
  int64_t expected_dims_lo = 0, expected_dims_hi = 0;
  InterpMode interp = InterpMode::Nearest;
  bool align_corners = false, has_size = false;
  int64_t size_h = 0, size_w = 0;
  double factor_h = 0, factor_w = 0;
  bool keep_scales = false;
  std::vector<int64_t> pads;
  PadMode pad_mode = PadMode::Constant;
  float pad_value = 0.0f;
  BinaryOp binop = BinaryOp::Add;
  bool has_scalar = false, scalar_first = false;
  double scalar = 0, bin_alpha = 1;
  std::vector<int64_t> dims;
  bool keepdim = false;

  // A Conv2d that optimize_for_inference merged with the nodes that read only its output: a
  // BatchNorm in eval mode folded into folded_w / folded_b (undefined: no bias), then an add of
  // inputs[1] and a ReLU / hardtanh, all in conv2d_forward's epilogue. Its outputs are the last
  // merged node's.
  bool fused = false;
  Tensor folded_w, folded_b;
  enum class Clamp { None, Relu, Hardtanh } clamp = Clamp::None;
};

// What a node's forward kept for its backward.
struct Saved {
  std::vector<Tensor> t;
  std::vector<Shape> shapes;
  bool flag = false;
};

std::string node_where(const std::string& what, const Node& n) {
  return detail::concat(what, ": node '", n.name, "' (", n.op_name, ")");
}

// Typed access to a node's attrs with messages naming the file, node and attribute.
class Attrs {
 public:
  Attrs(const Value& v, std::string where) : v_(v), where_(std::move(where)) {
    CNNCORE_CHECK_VALUE(v.is_object(), where_, ": 'attrs' must be an object, but is ",
                        v.type_name());
  }
  bool is_null(const char* key) const {
    const Value* x = v_.find(key);
    return x && x->is_null();
  }
  const Value* opt(const char* key) const {
    const Value* x = v_.find(key);
    return x && !x->is_null() ? x : nullptr;
  }
  const Value& get(const char* key) const {
    const Value* x = v_.find(key);
    CNNCORE_CHECK_VALUE(x != nullptr, where_, ": attribute '", key, "' is missing");
    return *x;
  }
  [[noreturn]] void bad(const char* key, const char* expected, const Value& x) const {
    throw ValueError(detail::concat(where_, ": attribute '", key, "' must be ", expected,
                                    ", but is ", json::dump(x)));
  }
  int64_t integer(const Value& x, const char* key) const {
    if (!(x.is_number() && x.is_integer)) bad(key, "an integer", x);
    return x.integer;
  }
  int64_t i(const char* key) const { return integer(get(key), key); }
  int64_t i(const char* key, int64_t dflt) const {
    const Value* x = opt(key);
    return x ? integer(*x, key) : dflt;
  }
  double d(const char* key, double dflt) const {
    const Value* x = opt(key);
    if (!x) return dflt;
    if (!x->is_number()) bad(key, "a number", *x);
    return x->number;
  }
  bool b(const char* key, bool dflt) const {
    const Value* x = opt(key);
    if (!x) return dflt;
    if (x->is_bool()) return x->boolean;
    if (x->is_number() && x->is_integer && (x->integer == 0 || x->integer == 1))
      return x->integer == 1;
    bad(key, "a bool", *x);
  }
  std::string s(const char* key, const std::string& dflt) const {
    const Value* x = opt(key);
    if (!x) return dflt;
    if (!x->is_string()) bad(key, "a string", *x);
    return x->string;
  }
  // An int or a list of two ints, as torch's _pair.
  std::pair<int64_t, int64_t> pair(const char* key, int64_t dflt) const {
    const Value* x = opt(key);
    if (!x) return {dflt, dflt};
    return pair_of(*x, key);
  }
  std::pair<int64_t, int64_t> pair_of(const Value& x, const char* key) const {
    if (x.is_number()) {
      const int64_t v = integer(x, key);
      return {v, v};
    }
    if (!(x.is_array() && x.array.size() == 2)) bad(key, "an int or a pair of ints", x);
    return {integer(x.array[0], key), integer(x.array[1], key)};
  }
  std::vector<int64_t> ints(const Value& x, const char* key) const {
    if (x.is_number()) return {integer(x, key)};
    if (!x.is_array()) bad(key, "a list of ints", x);
    std::vector<int64_t> out;
    for (const Value& e : x.array) {
      if (e.is_array()) {  // view((2, 3)) records [[2, 3]]
        for (const Value& f : e.array) out.push_back(integer(f, key));
      } else {
        out.push_back(integer(e, key));
      }
    }
    return out;
  }

 private:
  const Value& v_;
  std::string where_;
};

int64_t wrap_dim(int64_t d, int64_t ndim, const std::string& where, const char* arg) {
  const int64_t n = std::max<int64_t>(ndim, 1);
  CNNCORE_CHECK_VALUE(d >= -n && d < n, where, ": ", arg, " ", d, " is out of range for a ",
                      ndim, "-D input");
  return d < 0 ? d + n : d;
}

Tensor add_grads(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return binary(BinaryOp::Add, a, b);
}

Tensor scale(const Tensor& t, double s) { return binary_scalar(BinaryOp::Mul, t, s, false); }

}  // namespace

struct Model::Impl {
  std::string what = "model";
  Value graph;  // as loaded or built: saved back verbatim (with its example shapes)
  std::vector<std::string> value_names;
  std::map<std::string, int> value_index;
  std::vector<int> inputs, outputs;
  std::vector<Shape> example_shapes;  // per value; empty when unknown
  std::vector<Node> nodes;
  std::vector<int> last_use;  // per value: the last node that reads it (-1: none)

  bool frozen = false;  // made by optimize_for_inference: eval only, nodes fused

  std::vector<std::pair<std::string, Tensor>> state;  // state_dict order
  std::vector<bool> trainable;
  std::vector<Tensor> grads;
  bool training = false;

  // The tape of the last forward in train mode.
  std::vector<Saved> saved;
  std::vector<Shape> output_shapes;
  bool taped = false;

  int state_index(const std::string& key) const {
    for (size_t k = 0; k < state.size(); ++k)
      if (state[k].first == key) return static_cast<int>(k);
    return -1;
  }
  const Tensor& st(int idx) const { return state[static_cast<size_t>(idx)].second; }
  std::optional<Tensor> opt_st(int idx) const {
    return idx < 0 ? std::nullopt : std::optional<Tensor>(st(idx));
  }

  void build(const std::string& where);
  void compute_last_use();
  void parse_node(const Value& v, size_t index);
  void resolve_params(Node& n, const Value& v);
  std::vector<Tensor> run(const Node& n, const std::vector<Tensor>& in, Saved* saved);
  std::vector<Tensor> grad(const Node& n, const Saved& s, const std::vector<Tensor>& gy,
                           const std::vector<Shape>& in_shapes);
  void accumulate_param(int idx, const Tensor& g);
};

// ---- parsing and validation --------------------------------------------------------------------
void Model::Impl::build(const std::string& where) {
  what = where;
  CNNCORE_CHECK_VALUE(graph.is_object(), what, ": the graph must be a JSON object, but is ",
                      graph.type_name());
  const Value* format = graph.find("format");
  CNNCORE_CHECK_VALUE(format && format->is_string() && format->string == "cnncore.graph", what,
                      ": the graph has no \"format\": \"cnncore.graph\" (not a cnncore model?)");
  const Value* version = graph.find("version");
  CNNCORE_CHECK_VALUE(version && version->is_number() && version->is_integer &&
                          version->integer == kFormatVersion,
                      what, ": graph format version ", version ? json::dump(*version) : "none",
                      " is not supported (this cnncore reads version ", kFormatVersion, ")");
  const Value* ins = graph.find("inputs");
  const Value* outs = graph.find("outputs");
  const Value* nodes_v = graph.find("nodes");
  CNNCORE_CHECK_VALUE(ins && ins->is_array() && !ins->array.empty(), what,
                      ": the graph's 'inputs' must be a non-empty array");
  CNNCORE_CHECK_VALUE(outs && outs->is_array() && !outs->array.empty(), what,
                      ": the graph's 'outputs' must be a non-empty array");
  CNNCORE_CHECK_VALUE(nodes_v && nodes_v->is_array(), what, ": the graph's 'nodes' must be an array");
  const Value* shapes = graph.find("shapes");

  auto define = [&](const Value& name, const std::string& ctx) {
    CNNCORE_CHECK_VALUE(name.is_string(), what, ": ", ctx, ": value names must be strings, but "
                        "got ", json::dump(name));
    CNNCORE_CHECK_VALUE(!value_index.count(name.string), what, ": ", ctx, ": value '",
                        name.string, "' is defined twice");
    const int idx = static_cast<int>(value_names.size());
    value_names.push_back(name.string);
    value_index[name.string] = idx;
    Shape shape;
    const Value* s = shapes ? shapes->find(name.string) : nullptr;
    if (s && s->is_array()) {
      for (const Value& d : s->array)
        if (d.is_number() && d.is_integer && d.integer >= 0) shape.push_back(d.integer);
    }
    example_shapes.push_back(shape);
    return idx;
  };
  for (const Value& in : ins->array) {
    const Value* name = in.is_object() ? in.find("name") : nullptr;
    CNNCORE_CHECK_VALUE(name != nullptr, what, ": each graph input must be {\"name\": ...}");
    inputs.push_back(define(*name, "graph input"));
  }
  for (size_t k = 0; k < nodes_v->array.size(); ++k) {
    const Value& nv = nodes_v->array[k];
    CNNCORE_CHECK_VALUE(nv.is_object(), what, ": node ", k, " must be an object");
    parse_node(nv, k);
    const Value* outs_v = nv.find("outputs");
    Node& n = nodes.back();
    for (const Value& o : outs_v->array) n.outputs.push_back(define(o, node_where(what, n)));
  }
  for (const Value& o : outs->array) {
    CNNCORE_CHECK_VALUE(o.is_string() && value_index.count(o.string), what,
                        ": graph output ", json::dump(o), " is not a value of the graph");
    outputs.push_back(value_index[o.string]);
  }
  compute_last_use();
  grads.assign(state.size(), Tensor());
}

void Model::Impl::compute_last_use() {
  last_use.assign(value_names.size(), -1);
  for (size_t k = 0; k < nodes.size(); ++k)
    for (int v : nodes[k].inputs) last_use[static_cast<size_t>(v)] = static_cast<int>(k);
  for (int v : outputs) last_use[static_cast<size_t>(v)] = static_cast<int>(nodes.size());
}

void Model::Impl::parse_node(const Value& v, size_t index) {
  Node n;
  auto str = [&](const char* key) {
    const Value* x = v.find(key);
    CNNCORE_CHECK_VALUE(x && x->is_string(), what, ": node ", index, ": '", key,
                        "' is missing or not a string");
    return x->string;
  };
  n.name = str("name");
  n.op_name = str("op");
  n.kind = str("kind");
  const OpInfo* info = nullptr;
  for (const auto& o : kOps)
    if (n.op_name == o.name && n.kind == o.kind) info = &o;
  const std::string where = node_where(what, n);
  CNNCORE_CHECK_VALUE(info != nullptr, where, ": ", n.kind, " '", n.op_name,
                      "' is not supported by the C++ runtime");
  n.op = info->op;
  const Value* ins = v.find("inputs");
  const Value* outs = v.find("outputs");
  CNNCORE_CHECK_VALUE(ins && ins->is_array() && !ins->array.empty(), where,
                      ": 'inputs' must be a non-empty array");
  CNNCORE_CHECK_VALUE(outs && outs->is_array() && !outs->array.empty() && outs->array.size() <= 2,
                      where, ": 'outputs' must be an array of one or two names");
  for (const Value& i : ins->array) {
    CNNCORE_CHECK_VALUE(i.is_string() && value_index.count(i.string), where, ": input ",
                        json::dump(i), " is not defined by an earlier node or a graph input");
    n.inputs.push_back(value_index[i.string]);
  }
  static const Value empty = Value::make_object();
  const Value* av = v.find("attrs");
  const Attrs a(av ? *av : empty, where);
  const size_t n_in = n.inputs.size();
  auto want_inputs = [&](size_t lo, size_t hi) {
    CNNCORE_CHECK_VALUE(n_in >= lo && n_in <= hi, where, ": takes ", lo == hi ? "" : "from ", lo,
                        lo == hi ? "" : detail::concat(" to ", hi), " input(s), but has ", n_in);
  };
  const bool fn = n.kind == "function";
  size_t n_out = 1;
  switch (n.op) {
    case Op::Conv2d:
    case Op::ConvTranspose2d: {
      want_inputs(1, 1);
      auto [sh, sw] = a.pair("stride", 1);
      auto [dh, dw] = a.pair("dilation", 1);
      n.conv.stride_h = sh, n.conv.stride_w = sw, n.conv.dilation_h = dh, n.conv.dilation_w = dw;
      n.conv.groups = a.i("groups", 1);
      const Value* pad = a.opt("padding");
      if (!pad) {
        n.conv.padding = Padding2d::symmetric(0, 0);
      } else if (pad->is_string()) {
        CNNCORE_CHECK_VALUE(pad->string == "same" || pad->string == "valid", where,
                            ": attribute 'padding' must be 'same', 'valid' or ints, but is '",
                            pad->string, "'");
        CNNCORE_CHECK_VALUE(n.op == Op::Conv2d, where, ": padding '", pad->string,
                            "' has no transposed meaning");
        n.conv.padding = pad->string == "same" ? Padding2d::same() : Padding2d::valid();
      } else if (pad->is_array() && pad->array.size() == 2 && pad->array[0].is_array()) {
        auto [t, b] = a.pair_of(pad->array[0], "padding");
        auto [l, r] = a.pair_of(pad->array[1], "padding");
        n.conv.padding = Padding2d::asymmetric(t, b, l, r);
      } else {
        auto [ph, pw] = a.pair_of(*pad, "padding");
        n.conv.padding = Padding2d::symmetric(ph, pw);
      }
      if (n.op == Op::ConvTranspose2d) {
        auto [oh, ow] = a.pair("output_padding", 0);
        n.out_pad_h = oh, n.out_pad_w = ow;
      }
      break;
    }
    case Op::Linear: want_inputs(1, 1); break;
    case Op::BatchNorm: {
      want_inputs(1, 1);
      n.eps = a.d("eps", 1e-5);
      n.momentum_none = a.is_null("momentum");
      n.momentum = a.d("momentum", 0.0);
      n.affine = a.b("affine", true);
      n.track_running_stats = a.b("track_running_stats", true);
      if (n.op_name == "BatchNorm2d") n.expected_dims_lo = n.expected_dims_hi = 4;
      else n.expected_dims_lo = 2, n.expected_dims_hi = 3;
      break;
    }
    case Op::Hardtanh:
      want_inputs(1, 1);
      if (n.op_name == "hardtanh") n.lo = a.d("min_val", -1.0), n.hi = a.d("max_val", 1.0);
      else n.lo = 0.0, n.hi = 6.0;
      break;
    case Op::LeakyRelu: want_inputs(1, 1); n.slope = a.d("negative_slope", 0.01); break;
    case Op::Relu:
    case Op::Sigmoid:
    case Op::Tanh:
    case Op::Identity: want_inputs(1, 1); break;
    case Op::Softmax:
    case Op::LogSoftmax:
      want_inputs(1, 1);
      if (a.opt("dim")) n.dim = a.i("dim");
      break;
    case Op::MaxPool:
    case Op::AvgPool: {
      want_inputs(1, 1);
      auto [kh, kw] = a.pair("kernel_size", 1);
      n.pool.kernel_h = kh, n.pool.kernel_w = kw;
      const Value* stride = a.opt("stride");
      if (stride && !(stride->is_array() && stride->array.empty())) {
        auto [sh, sw] = a.pair_of(*stride, "stride");
        CNNCORE_CHECK_VALUE(sh > 0 && sw > 0, where, ": stride must be positive");
        n.pool.stride_h = sh, n.pool.stride_w = sw;
      } else {
        n.pool.stride_h = kh, n.pool.stride_w = kw;
      }
      auto [ph, pw] = a.pair("padding", 0);
      n.pool.pad_h = ph, n.pool.pad_w = pw;
      n.pool.ceil_mode = a.b("ceil_mode", false);
      if (n.op == Op::MaxPool) {
        auto [dh, dw] = a.pair("dilation", 1);
        n.pool.dilation_h = dh, n.pool.dilation_w = dw;
        n.return_indices = a.b("return_indices", false);
      } else {
        n.pool.count_include_pad = a.b("count_include_pad", true);
        if (a.opt("divisor_override")) {
          n.pool.divisor_override = a.i("divisor_override");
          CNNCORE_CHECK_VALUE(n.pool.divisor_override != 0, where,
                              ": divisor_override must be non-zero");
        }
      }
      break;
    }
    case Op::AdaptiveAvg:
    case Op::AdaptiveMax: {
      want_inputs(1, 1);
      const Value& os = a.get("output_size");
      if (os.is_array()) {
        CNNCORE_CHECK_VALUE(os.array.size() == 2, where, ": output_size must be an int or a pair");
        if (!os.array[0].is_null()) n.out_h = a.integer(os.array[0], "output_size");
        if (!os.array[1].is_null()) n.out_w = a.integer(os.array[1], "output_size");
      } else if (!os.is_null()) {
        n.out_h = n.out_w = a.integer(os, "output_size");
      }
      n.return_indices = n.op == Op::AdaptiveMax && a.b("return_indices", false);
      break;
    }
    case Op::Flatten:
      want_inputs(1, 1);
      n.start_dim = a.i("start_dim", fn ? 0 : 1);
      n.end_dim = a.i("end_dim", -1);
      break;
    case Op::Reshape: want_inputs(1, 1); n.shape = a.ints(a.get("shape"), "shape"); break;
    case Op::Dropout:
      want_inputs(1, 1);
      n.p = a.d("p", 0.5);
      CNNCORE_CHECK_VALUE(n.p >= 0.0 && n.p <= 1.0, where, ": p must be in [0, 1], but is ", n.p);
      n.channel_wise = n.op_name == "Dropout2d" || n.op_name == "dropout2d";
      break;
    case Op::Lrn:
      want_inputs(1, 1);
      n.lrn_size = a.i("size");
      n.alpha = a.d("alpha", 1e-4), n.beta = a.d("beta", 0.75), n.k = a.d("k", 1.0);
      break;
    case Op::Interpolate: {
      want_inputs(1, 1);
      const std::string mode = a.s("mode", "nearest");
      CNNCORE_CHECK_VALUE(mode == "nearest" || mode == "bilinear", where, ": mode '", mode,
                          "' is not supported by the C++ runtime (nearest, bilinear)");
      n.interp = mode == "nearest" ? InterpMode::Nearest : InterpMode::Bilinear;
      n.align_corners = mode == "bilinear" && a.b("align_corners", false);
      if (const Value* size = a.opt("size")) {
        n.has_size = true;
        auto [h, w] = a.pair_of(*size, "size");
        n.size_h = h, n.size_w = w;
      } else {
        const Value& f = a.get("scale_factor");
        if (f.is_number()) {
          n.factor_h = n.factor_w = f.number;
        } else {
          CNNCORE_CHECK_VALUE(f.is_array() && f.array.size() == 2 && f.array[0].is_number() &&
                                  f.array[1].is_number(),
                              where, ": needs 'size' or 'scale_factor' (a number or a pair)");
          n.factor_h = f.array[0].number, n.factor_w = f.array[1].number;
        }
        CNNCORE_CHECK_VALUE(n.factor_h > 0 && n.factor_w > 0 && std::isfinite(n.factor_h) &&
                                std::isfinite(n.factor_w),
                            where, ": scale_factor must be positive and finite");
        n.keep_scales = !a.b("recompute_scale_factor", false);
      }
      break;
    }
    case Op::Pad: {
      want_inputs(1, 1);
      n.pads = a.ints(a.get(fn ? "pad" : "padding"), fn ? "pad" : "padding");
      if (!fn && n.pads.size() == 1) n.pads.assign(4, n.pads[0]);
      const std::string mode = a.s("mode", "constant");
      CNNCORE_CHECK_VALUE(mode == "constant" || mode == "reflect" || mode == "replicate", where,
                          ": pad mode '", mode, "' is not supported");
      n.pad_mode = mode == "constant" ? PadMode::Constant
                   : mode == "reflect" ? PadMode::Reflect : PadMode::Replicate;
      n.pad_value = static_cast<float>(a.d("value", 0.0));
      break;
    }
    case Op::Binary:
      want_inputs(1, 2);
      n.binop = binary_op_from_name(n.op_name);
      n.bin_alpha = a.d("alpha", 1.0);
      n.has_scalar = n_in == 1;
      if (n.has_scalar) {
        n.scalar = a.d("scalar", 0.0);
        CNNCORE_CHECK_VALUE(a.opt("scalar"), where, ": one input needs attribute 'scalar'");
        n.scalar_first = a.b("scalar_first", false);
        CNNCORE_CHECK_VALUE(!(n.scalar_first && n.bin_alpha != 1.0), where,
                            ": alpha with a scalar first operand is not supported");
        n.scalar *= n.bin_alpha;
      }
      break;
    case Op::Cat: want_inputs(1, 1 << 16); n.dim = a.i("dim", 0); break;
    case Op::Sum:
    case Op::Mean:
      want_inputs(1, 1);
      if (const Value* d = a.opt("dim")) n.dims = a.ints(*d, "dim");
      n.keepdim = a.b("keepdim", false);
      break;
  }
  if (n.return_indices) n_out = 2;
  CNNCORE_CHECK_VALUE(outs->array.size() == n_out, where, ": has ", outs->array.size(),
                      " outputs but the op gives ", n_out);
  if (n.kind == "module") {
    const Value* module = v.find("module");
    n.module = module && module->is_string() ? module->string : n.name;
    resolve_params(n, v);
  }
  nodes.push_back(std::move(n));
}

void Model::Impl::resolve_params(Node& n, const Value& v) {
  const std::string where = node_where(what, n);
  const Value* params = v.find("params");
  if (params && !params->is_null()) {
    CNNCORE_CHECK_VALUE(params->is_object(), where, ": 'params' must be an object");
    for (const auto& [local, key] : params->object) {
      CNNCORE_CHECK_VALUE(key.is_string(), where, ": params['", local, "'] must be a string");
      const int idx = state_index(key.string);
      CNNCORE_CHECK_VALUE(idx >= 0, where, ": parameter '", key.string,
                          "' is not among the file's tensors");
      n.params.emplace_back(local, idx);
      if (local == "weight") n.weight = idx;
      else if (local == "bias") n.bias = idx;
      else if (local == "running_mean") n.running_mean = idx;
      else if (local == "running_var") n.running_var = idx;
      else if (local == "num_batches_tracked") n.batches = idx;
    }
  }
  for (const auto& [local, idx] : n.params) {
    const Tensor& t = st(idx);
    const DType want = local == "num_batches_tracked" ? DType::Int64 : DType::Float32;
    CNNCORE_CHECK_TYPE(t.dtype() == want, where, ": parameter '", state[size_t(idx)].first,
                       "' must be ", dtype_name(want), ", but is ", dtype_name(t.dtype()));
  }
  auto need = [&](int idx, const char* local, int64_t dims) {
    CNNCORE_CHECK_VALUE(idx >= 0, where, ": needs parameter '", local, "'");
    CNNCORE_CHECK_VALUE(st(idx).dim() == dims, where, ": parameter '", state[size_t(idx)].first,
                        "' must be ", dims, "-D, but has shape ", shape_str(st(idx).shape()));
  };
  auto vec = [&](int idx, int64_t c) {
    if (idx < 0) return;
    CNNCORE_CHECK_VALUE(st(idx).dim() == 1 && st(idx).size(0) == c, where, ": parameter '",
                        state[size_t(idx)].first, "' must have shape (", c, ",), but has ",
                        shape_str(st(idx).shape()));
  };
  switch (n.op) {
    case Op::Conv2d:
      need(n.weight, "weight", 4);
      vec(n.bias, st(n.weight).size(0));
      break;
    case Op::ConvTranspose2d:
      need(n.weight, "weight", 4);
      vec(n.bias, st(n.weight).size(1) * n.conv.groups);
      break;
    case Op::Linear:
      need(n.weight, "weight", 2);
      vec(n.bias, st(n.weight).size(0));
      break;
    case Op::BatchNorm: {
      const int ref = n.running_mean >= 0 ? n.running_mean : n.weight;
      CNNCORE_CHECK_VALUE(ref >= 0 || !n.track_running_stats, where,
                          ": needs running_mean/running_var or weight");
      if (ref >= 0) {
        need(ref, "running_mean", 1);
        const int64_t c = st(ref).size(0);
        vec(n.weight, c), vec(n.bias, c), vec(n.running_mean, c), vec(n.running_var, c);
      }
      CNNCORE_CHECK_VALUE((n.running_mean >= 0) == (n.running_var >= 0), where,
                          ": running_mean and running_var come together");
      break;
    }
    default: break;
  }
}

// ---- forward -----------------------------------------------------------------------------------
std::vector<Tensor> Model::Impl::run(const Node& n, const std::vector<Tensor>& in, Saved* s) {
  const Tensor& x = in[0];
  auto keep = [&](std::initializer_list<Tensor> ts) {
    if (s) s->t.assign(ts);
  };
  switch (n.op) {
    case Op::Conv2d: {
      keep({x});
      if (!n.fused) return {conv2d_forward(x, st(n.weight), opt_st(n.bias), n.conv)};
      const std::optional<Tensor> b =
          n.folded_b.defined() ? std::optional<Tensor>(n.folded_b) : std::nullopt;
      Conv2dEpilogue e;
      if (n.clamp == Node::Clamp::Relu) e.min_value = 0.0;
      if (n.clamp == Node::Clamp::Hardtanh) e.min_value = n.lo, e.max_value = n.hi;
      if (in.size() > 1) {
        const Shape out = conv2d_params(x.shape(), n.folded_w.shape(), n.conv, "conv2d")
                              .output_shape();
        const Tensor& r = in[1];
        if (r.shape() != out || r.dtype() != DType::Float32 || r.is_cuda() != x.is_cuda()) {
          // An add that broadcasts or promotes: the separate ops (the sum commutes exactly).
          Tensor y = binary(BinaryOp::Add, conv2d_forward(x, n.folded_w, b, n.conv), r);
          if (n.clamp == Node::Clamp::Relu) return {relu_forward(y)};
          if (n.clamp == Node::Clamp::Hardtanh) return {hardtanh_forward(y, n.lo, n.hi)};
          return {y};
        }
        e.residual = r;
      }
      return {conv2d_forward(x, n.folded_w, b, n.conv, e)};
    }
    case Op::ConvTranspose2d: {
      keep({x});
      return {conv_transpose2d_forward(x, st(n.weight), opt_st(n.bias), n.conv, n.out_pad_h,
                                       n.out_pad_w)};
    }
    case Op::Linear: keep({x}); return {linear_forward(x, st(n.weight), opt_st(n.bias))};
    case Op::BatchNorm: {
      CNNCORE_CHECK_VALUE(x.dim() >= n.expected_dims_lo && x.dim() <= n.expected_dims_hi,
                          n.op_name, ": expected ", n.expected_dims_lo,
                          n.expected_dims_hi != n.expected_dims_lo ? "-D or 3" : "",
                          "-D input, but got ", x.dim(), "-D with shape ", shape_str(x.shape()));
      double momentum = n.momentum_none ? 0.0 : n.momentum;
      if (training && n.track_running_stats && n.batches >= 0) {
        int64_t* count = st(n.batches).data<int64_t>();
        *count += 1;
        if (n.momentum_none) momentum = 1.0 / static_cast<double>(*count);
      }
      const bool has_running = n.running_mean >= 0;
      const bool batch_stats = training || !has_running;
      const bool track = !training || n.track_running_stats;
      auto [y, mean, invstd] = batch_norm_forward(
          x, track ? opt_st(n.running_mean) : std::nullopt,
          track ? opt_st(n.running_var) : std::nullopt, opt_st(n.weight), opt_st(n.bias),
          batch_stats, momentum, n.eps);
      if (s) {
        s->t = {x, mean, invstd};
        s->flag = batch_stats;
      }
      return {y};
    }
    case Op::Relu: {
      Tensor y = relu_forward(x);
      keep({y});
      return {y};
    }
    case Op::Hardtanh: keep({x}); return {hardtanh_forward(x, n.lo, n.hi)};
    case Op::LeakyRelu: keep({x}); return {leaky_relu_forward(x, n.slope)};
    case Op::Sigmoid: {
      Tensor y = sigmoid_forward(x);
      keep({y});
      return {y};
    }
    case Op::Tanh: {
      Tensor y = tanh_forward(x);
      keep({y});
      return {y};
    }
    case Op::Softmax:
    case Op::LogSoftmax: {
      // torch's legacy implicit dim (_get_softmax_dim): 0 for 0-, 1- and 3-D input, else 1.
      const int64_t d = n.dim ? *n.dim : (x.dim() <= 1 || x.dim() == 3 ? 0 : 1);
      Tensor y = n.op == Op::Softmax ? softmax_forward(x, d) : log_softmax_forward(x, d);
      if (s) s->t = {y}, s->shapes = {{d}};
      return {y};
    }
    case Op::MaxPool: {
      auto [y, idx] = max_pool2d_forward(x, n.pool);
      keep({idx});
      if (n.return_indices) return {y, idx};
      return {y};
    }
    case Op::AvgPool: return {avg_pool2d_forward(x, n.pool)};
    case Op::AdaptiveAvg:
    case Op::AdaptiveMax: {
      CNNCORE_CHECK_VALUE(x.dim() >= 2, n.op_name, ": input must be 3-D or 4-D, but has shape ",
                          shape_str(x.shape()));
      const int64_t oh = n.out_h ? *n.out_h : x.size(-2);
      const int64_t ow = n.out_w ? *n.out_w : x.size(-1);
      if (n.op == Op::AdaptiveAvg) return {adaptive_avg_pool2d_forward(x, oh, ow)};
      auto [y, idx] = adaptive_max_pool2d_forward(x, oh, ow);
      keep({idx});
      if (n.return_indices) return {y, idx};
      return {y};
    }
    case Op::Flatten: {
      const Shape& sh = x.shape();
      if (sh.empty()) return {x.reshape({1})};
      const std::string where = node_where(what, n);
      const int64_t a = wrap_dim(n.start_dim, x.dim(), where, "start_dim");
      const int64_t b = wrap_dim(n.end_dim, x.dim(), where, "end_dim");
      CNNCORE_CHECK_VALUE(a <= b, where, ": start_dim cannot come after end_dim");
      Shape out(sh.begin(), sh.begin() + a);
      int64_t m = 1;
      for (int64_t d = a; d <= b; ++d) m *= sh[size_t(d)];
      out.push_back(m);
      out.insert(out.end(), sh.begin() + b + 1, sh.end());
      return {x.reshape(out)};
    }
    case Op::Reshape: return {x.reshape(n.shape)};
    case Op::Identity: return {x};
    case Op::Dropout: {
      if (!training || n.p == 0.0) return {x};
      auto [y, mask] = dropout_forward(x, n.p, n.channel_wise);
      keep({mask});
      return {y};
    }
    case Op::Lrn: keep({x}); return {local_response_norm_forward(x, n.lrn_size, n.alpha, n.beta, n.k)};
    case Op::Interpolate: {
      CNNCORE_CHECK_VALUE(x.dim() == 4, node_where(what, n), ": the C++ runtime interpolates "
                          "4-D (N, C, H, W) input, but got shape ", shape_str(x.shape()));
      int64_t oh = n.size_h, ow = n.size_w;
      double sh = 0, sw = 0;
      if (!n.has_size) {
        oh = static_cast<int64_t>(std::floor(double(x.size(2)) * n.factor_h));
        ow = static_cast<int64_t>(std::floor(double(x.size(3)) * n.factor_w));
        if (n.keep_scales) sh = n.factor_h, sw = n.factor_w;
      }
      if (s) s->shapes = {{oh, ow}};
      if (s) s->t.clear();
      Tensor y = interpolate_forward(x, oh, ow, n.interp, n.align_corners, sh, sw);
      if (s) s->flag = !n.has_size && n.keep_scales;
      return {y};
    }
    case Op::Pad: return {pad_forward(x, n.pads, n.pad_mode, n.pad_value)};
    case Op::Binary: {
      if (n.has_scalar) {
        Tensor y = binary_scalar(n.binop, x, n.scalar, n.scalar_first);
        keep({x, y});
        return {y};
      }
      Tensor b = n.bin_alpha != 1.0 ? scale(in[1], n.bin_alpha) : in[1];
      Tensor y = binary(n.binop, x, b);
      keep({x, b, y});
      return {y};
    }
    case Op::Cat: {
      std::vector<Tensor> ts(in.begin(), in.end());
      return {cat(ts, *n.dim)};
    }
    case Op::Sum: return {sum(x, n.dims, n.keepdim)};
    case Op::Mean: return {mean(x, n.dims, n.keepdim)};
  }
  throw Error("graph: unhandled op");  // unreachable: every Op is handled above
}

// ---- backward: the same backward functions the Python ops record -------------------------------
std::vector<Tensor> Model::Impl::grad(const Node& n, const Saved& s, const std::vector<Tensor>& gy,
                                      const std::vector<Shape>& in_shapes) {
  const Tensor& g = gy[0];
  const Shape& xs = in_shapes[0];
  switch (n.op) {
    case Op::Conv2d: {
      const Tensor& x = s.t[0];
      // x is the saved input, so its shape is xs: every gradient in one call (dx and dw in
      // one pass for depthwise layers, db summed with the direct weight gradient).
      Conv2dGrads grads = conv2d_backward(g, x, st(n.weight), n.conv, {true, true, n.bias >= 0});
      accumulate_param(n.weight, grads.weight);
      if (n.bias >= 0) accumulate_param(n.bias, grads.bias);
      return {std::move(grads.input)};
    }
    case Op::ConvTranspose2d: {
      const Tensor& x = s.t[0];
      accumulate_param(n.weight, conv_transpose2d_backward_weight(
                                     g, x, st(n.weight).shape(), n.conv, n.out_pad_h, n.out_pad_w));
      if (n.bias >= 0) accumulate_param(n.bias, conv2d_backward_bias(g));
      return {conv_transpose2d_backward_input(g, st(n.weight), xs, n.conv, n.out_pad_h,
                                              n.out_pad_w)};
    }
    case Op::Linear: {
      accumulate_param(n.weight, linear_backward_weight(g, s.t[0]));
      if (n.bias >= 0) accumulate_param(n.bias, linear_backward_bias(g));
      return {linear_backward_input(g, st(n.weight))};
    }
    case Op::BatchNorm: {
      auto [dx, dw, db] = batch_norm_backward(g, s.t[0], opt_st(n.weight), s.t[1], s.t[2], s.flag);
      if (n.weight >= 0) accumulate_param(n.weight, dw);
      if (n.bias >= 0) accumulate_param(n.bias, db);
      return {dx};
    }
    case Op::Relu: return {relu_backward(g, s.t[0])};
    case Op::Hardtanh: return {hardtanh_backward(g, s.t[0], n.lo, n.hi)};
    case Op::LeakyRelu: return {leaky_relu_backward(g, s.t[0], n.slope)};
    case Op::Sigmoid: return {sigmoid_backward(g, s.t[0])};
    case Op::Tanh: return {tanh_backward(g, s.t[0])};
    case Op::Softmax: return {softmax_backward(g, s.t[0], s.shapes[0][0])};
    case Op::LogSoftmax: return {log_softmax_backward(g, s.t[0], s.shapes[0][0])};
    case Op::MaxPool: return {max_pool2d_backward(g, s.t[0], xs)};
    case Op::AvgPool: return {avg_pool2d_backward(g, xs, n.pool)};
    case Op::AdaptiveAvg: return {adaptive_avg_pool2d_backward(g, xs)};
    case Op::AdaptiveMax: return {adaptive_max_pool2d_backward(g, s.t[0], xs)};
    case Op::Flatten:
    case Op::Reshape: return {g.reshape(xs)};
    case Op::Identity: return {g};
    case Op::Dropout: return {s.t.empty() ? g : dropout_backward(g, s.t[0])};
    case Op::Lrn:
      return {local_response_norm_backward(g, s.t[0], n.lrn_size, n.alpha, n.beta, n.k)};
    case Op::Interpolate: {
      const double sh = s.flag ? n.factor_h : 0, sw = s.flag ? n.factor_w : 0;
      return {interpolate_backward(g, xs, n.interp, n.align_corners, sh, sw)};
    }
    case Op::Pad: return {pad_backward(g, xs, n.pads, n.pad_mode)};
    case Op::Binary: {
      const Tensor& x = s.t[0];
      if (n.has_scalar) {
        const Tensor& y = s.t[1];
        switch (n.binop) {
          case BinaryOp::Add: return {g};
          case BinaryOp::Sub: return {n.scalar_first ? unary(UnaryOp::Neg, g) : g};
          case BinaryOp::Mul: return {scale(g, n.scalar)};
          default:  // div
            if (!n.scalar_first) return {binary_scalar(BinaryOp::Div, g, n.scalar, false)};
            return {unary(UnaryOp::Neg, binary(BinaryOp::Div, binary(BinaryOp::Mul, g, y), x))};
        }
      }
      const Tensor& b = s.t[1];
      const Tensor& y = s.t[2];
      Tensor ga, gb;
      switch (n.binop) {
        case BinaryOp::Add: ga = g, gb = g; break;
        case BinaryOp::Sub: ga = g, gb = unary(UnaryOp::Neg, g); break;
        case BinaryOp::Mul:
          ga = binary(BinaryOp::Mul, g, b), gb = binary(BinaryOp::Mul, g, x);
          break;
        default:  // div: d(a/b)/db = -y / b
          ga = binary(BinaryOp::Div, g, b);
          gb = unary(UnaryOp::Neg, binary(BinaryOp::Div, binary(BinaryOp::Mul, g, y), b));
      }
      if (n.bin_alpha != 1.0) gb = scale(gb, n.bin_alpha);
      return {sum_to_shape(ga, xs), sum_to_shape(gb, in_shapes[1])};
    }
    case Op::Cat: {
      // Sizes along dim; PyTorch's legacy rule skips 1-D empty inputs beside others.
      size_t ref = 0;
      for (size_t k = 0; k < in_shapes.size(); ++k)
        if (!(in_shapes[k].size() == 1 && in_shapes[k][0] == 0)) {
          ref = k;
          break;
        }
      const int64_t d = wrap_dim(*n.dim, int64_t(in_shapes[ref].size()), node_where(what, n), "dim");
      std::vector<Tensor> out;
      int64_t start = 0;
      for (size_t k = 0; k < in_shapes.size(); ++k) {
        const bool skip = k != ref && in_shapes[k].size() == 1 && in_shapes[k][0] == 0;
        if (skip) {
          out.emplace_back();
          continue;
        }
        const int64_t len = in_shapes[k][size_t(d)];
        out.push_back(g.narrow(d, start, len).contiguous());
        start += len;
      }
      return out;
    }
    case Op::Sum:
    case Op::Mean: {
      // Re-insert the reduced dims as 1 and broadcast back over them.
      const int64_t nd = static_cast<int64_t>(xs.size());
      std::vector<bool> reduced(size_t(std::max<int64_t>(nd, 0)), n.dims.empty());
      for (int64_t d : n.dims) reduced[size_t(wrap_dim(d, nd, node_where(what, n), "dim"))] = true;
      Shape kept;
      int64_t count = 1;
      for (int64_t d = 0; d < nd; ++d) {
        kept.push_back(reduced[size_t(d)] ? 1 : xs[size_t(d)]);
        if (reduced[size_t(d)]) count *= xs[size_t(d)];
      }
      Tensor gx = g.reshape(kept).expand(xs).contiguous();
      if (n.op == Op::Mean) gx = binary_scalar(BinaryOp::Div, gx, double(count), false);
      return {gx};
    }
  }
  throw Error("graph: unhandled op");
}

void Model::Impl::accumulate_param(int idx, const Tensor& g) {
  if (idx < 0 || !trainable[size_t(idx)]) return;
  Tensor& slot = grads[size_t(idx)];
  if (!slot.defined()) {
    slot = g.to_strided().clone();  // owned: later steps add into it in place
  } else {
    add_(slot, g);
  }
}

// ---- Model -------------------------------------------------------------------------------------
Model::Model() : impl_(std::make_shared<Impl>()) {}
Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

Model::Impl& checked(const std::shared_ptr<Model::Impl>& impl, const char* fn) {
  CNNCORE_CHECK_VALUE(!impl->nodes.empty() || !impl->inputs.empty(), "Model::", fn,
                      ": the model is empty (use load_model or Model::sequential)");
  return *impl;
}

std::vector<std::string> parse_order(const safetensors::File& f, const std::string& what) {
  std::vector<std::string> order;
  const std::string* text = f.find_metadata(kOrderKey);
  if (text) {
    const Value v = json::parse(*text, what + ": " + kOrderKey);
    bool ok = v.is_array() && v.array.size() == f.tensors.size();
    for (const Value& e : v.array) {
      ok = ok && e.is_string() && f.find_tensor(e.string) != nullptr &&
           std::find(order.begin(), order.end(), e.string) == order.end();
      if (ok) order.push_back(e.string);
    }
    if (ok) return order;
    order.clear();
  }
  for (const auto& kv : f.tensors) order.push_back(kv.first);
  std::sort(order.begin(), order.end());
  return order;
}

std::shared_ptr<Model::Impl> impl_from_file(const safetensors::File& f, const std::string& what) {
  const std::string* graph = f.find_metadata(kGraphKey);
  CNNCORE_CHECK_VALUE(graph != nullptr, what, ": no graph in the file (metadata '", kGraphKey,
                      "' is missing): it holds weights only; load them with cnncore.load in "
                      "Python, or save the model with model.save(path)");
  if (const std::string* crc = f.find_metadata(kCrcKey)) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", f.data_crc32);
    CNNCORE_CHECK_VALUE(*crc == buf, what, ": checksum mismatch: the tensor data has CRC-32 ",
                        buf, " but the file records ", *crc, " (the file is damaged)");
  }
  auto impl = std::make_shared<Model::Impl>();
  impl->graph = json::parse(*graph, what + ": graph");
  for (const std::string& key : parse_order(f, what)) {
    impl->state.emplace_back(key, *f.find_tensor(key));
    impl->trainable.push_back(false);
  }
  impl->build(what);
  // Trainable = a Parameter in Python: every float tensor a node names that is not a buffer.
  for (const Node& n : impl->nodes)
    for (const auto& [local, idx] : n.params)
      if (local != "running_mean" && local != "running_var" && local != "num_batches_tracked")
        impl->trainable[size_t(idx)] = true;
  return impl;
}

}  // namespace

Model load_model_from_memory(const void* data, size_t size, const std::string& what) {
  CNNCORE_CHECK_VALUE(data != nullptr || size == 0, "load_model: data is null");
  const safetensors::File f =
      safetensors::parse(static_cast<const uint8_t*>(data), size, what);
  return Model(impl_from_file(f, what));
}

Model load_model(const std::string& path) {
  return Model(impl_from_file(safetensors::read_file(path), path));
}

std::vector<Tensor> Model::forward(const std::vector<Tensor>& inputs) {
  Impl& m = checked(impl_, "forward");
  CNNCORE_CHECK_VALUE(inputs.size() == m.inputs.size(), "Model::forward: the model takes ",
                      m.inputs.size(), " input(s), but got ", inputs.size());
  std::vector<Tensor> values(m.value_names.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    CNNCORE_CHECK_VALUE(inputs[k].defined(), "Model::forward: input ", k, " ('",
                        m.value_names[size_t(m.inputs[k])], "') is undefined");
    values[size_t(m.inputs[k])] = inputs[k];
  }
  const bool tape = m.training;
  m.saved.assign(tape ? m.nodes.size() : 0, Saved());
  m.taped = false;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& n = m.nodes[i];
    std::vector<Tensor> in;
    in.reserve(n.inputs.size());
    for (int v : n.inputs) in.push_back(values[size_t(v)]);
    std::vector<Tensor> out = m.run(n, in, tape ? &m.saved[i] : nullptr);
    if (tape) {
      for (const Tensor& t : in) m.saved[i].shapes.push_back(t.shape());
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) values[size_t(n.outputs[k])] = out[k];
    if (!tape) {  // inference: drop every value no later node reads
      for (int v : n.inputs)
        if (m.last_use[size_t(v)] == static_cast<int>(i)) values[size_t(v)] = Tensor();
    }
  }
  std::vector<Tensor> result;
  for (int v : m.outputs) result.push_back(values[size_t(v)]);
  if (tape) {
    m.output_shapes.clear();
    for (const Tensor& t : result) m.output_shapes.push_back(t.shape());
    m.taped = true;
  }
  return result;
}

Tensor Model::forward(const Tensor& input) {
  std::vector<Tensor> out = forward(std::vector<Tensor>{input});
  CNNCORE_CHECK_VALUE(out.size() == 1, "Model::forward: the model has ", out.size(),
                      " outputs; call forward(std::vector<Tensor>)");
  return out[0];
}

void Model::backward(const std::vector<Tensor>& grad_outputs) {
  Impl& m = checked(impl_, "backward");
  CNNCORE_CHECK_VALUE(m.taped, "Model::backward: no forward to differentiate: call train() and "
                      "forward() first (each forward allows one backward)");
  CNNCORE_CHECK_VALUE(grad_outputs.size() == m.outputs.size(), "Model::backward: the model has ",
                      m.outputs.size(), " output(s), but got ", grad_outputs.size(), " gradients");
  std::vector<Tensor> grads(m.value_names.size());
  for (size_t k = 0; k < grad_outputs.size(); ++k) {
    const Tensor& g = grad_outputs[k];
    if (!g.defined()) continue;
    CNNCORE_CHECK_VALUE(g.shape() == m.output_shapes[k], "Model::backward: grad_outputs[", k,
                        "] must have the output's shape ", shape_str(m.output_shapes[k]),
                        ", but has ", shape_str(g.shape()));
    check_dtype(g, DType::Float32, "Model::backward", "grad_output");
    grads[size_t(m.outputs[k])] = add_grads(grads[size_t(m.outputs[k])], g);
  }
  for (size_t i = m.nodes.size(); i-- > 0;) {
    const Node& n = m.nodes[i];
    std::vector<Tensor> gy;
    bool any = false;
    for (int v : n.outputs) {
      gy.push_back(grads[size_t(v)]);
      any = any || grads[size_t(v)].defined();
      grads[size_t(v)] = Tensor();
    }
    if (!any || !gy[0].defined()) continue;  // a second output (indices) has no gradient
    std::vector<Tensor> gx = m.grad(n, m.saved[i], gy, m.saved[i].shapes);
    for (size_t k = 0; k < n.inputs.size() && k < gx.size(); ++k)
      if (gx[k].defined())
        grads[size_t(n.inputs[k])] = add_grads(grads[size_t(n.inputs[k])], gx[k]);
    m.saved[i] = Saved();  // free activations as soon as they are used
  }
  m.taped = false;
}

void Model::backward(const Tensor& grad_output) { backward(std::vector<Tensor>{grad_output}); }

void Model::train(bool mode) {
  CNNCORE_CHECK_VALUE(!(mode && impl_->frozen), "Model::train: this model was made by "
                      "optimize_for_inference (BatchNorm folded into the convolutions) and runs "
                      "inference only: train the original model");
  impl_->training = mode;
  if (!mode) {
    impl_->saved.clear();
    impl_->taped = false;
  }
}
bool Model::is_training() const { return impl_->training; }

void Model::zero_grad() {
  for (Tensor& g : impl_->grads) g = Tensor();
}

std::vector<std::string> Model::parameter_names() const {
  std::vector<std::string> out;
  for (size_t k = 0; k < impl_->state.size(); ++k)
    if (impl_->trainable[k]) out.push_back(impl_->state[k].first);
  return out;
}

Tensor Model::parameter(const std::string& name) const {
  const int idx = impl_->state_index(name);
  if (idx < 0) throw IndexError(detail::concat("Model::parameter: no tensor named '", name, "'"));
  return impl_->st(idx);
}

Tensor Model::grad(const std::string& name) const {
  const int idx = impl_->state_index(name);
  if (idx < 0) throw IndexError(detail::concat("Model::grad: no tensor named '", name, "'"));
  return impl_->grads[size_t(idx)];
}

std::vector<std::pair<std::string, Tensor>> Model::state_dict() const { return impl_->state; }

int64_t Model::num_parameters() const {
  int64_t n = 0;
  for (size_t k = 0; k < impl_->state.size(); ++k)
    if (impl_->trainable[k]) n += impl_->state[k].second.numel();
  return n;
}

std::vector<std::string> Model::input_names() const {
  std::vector<std::string> out;
  for (int v : impl_->inputs) out.push_back(impl_->value_names[size_t(v)]);
  return out;
}

std::vector<Shape> Model::input_shapes() const {
  std::vector<Shape> out;
  for (int v : impl_->inputs) out.push_back(impl_->example_shapes[size_t(v)]);
  return out;
}

std::string Model::summary() const {
  const Impl& m = *impl_;
  std::ostringstream os;
  auto names = [&](const std::vector<int>& vs) {
    std::string s;
    for (size_t k = 0; k < vs.size(); ++k) s += (k ? ", " : "") + m.value_names[size_t(vs[k])];
    return s;
  };
  for (const Node& n : m.nodes) {
    os << names(n.outputs) << " = " << n.op_name;
    if (n.kind == "module") os << "[" << n.module << "]";
    os << "(" << names(n.inputs) << ")";
    const Shape& shape = m.example_shapes[size_t(n.outputs[0])];
    if (!shape.empty()) os << " -> " << shape_str(shape);
    os << "\n";
  }
  return os.str();
}

void Model::save(const std::string& path) const {
  const Impl& m = checked(impl_, "save");
  CNNCORE_CHECK_VALUE(!m.frozen, "Model::save: this model was made by optimize_for_inference "
                      "(its folded weights are not the state_dict's): save the original model");
  Value order = Value::make_array();
  for (const auto& kv : m.state) order.array.push_back(Value::from_string(kv.first));
  std::vector<std::pair<std::string, std::string>> meta = {
      {kFormatKey, "model"}, {kGraphKey, json::dump(m.graph)}, {kOrderKey, json::dump(order)}};
  // The checksum covers the tensor bytes, which do not depend on the metadata: write once
  // without it to learn the bytes, then again with it.
  std::vector<uint8_t> bytes = safetensors::serialize(m.state, meta);
  const safetensors::File probe = safetensors::parse(bytes.data(), bytes.size(), path);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", probe.data_crc32);
  meta.emplace_back(kCrcKey, buf);
  safetensors::atomic_write(path, safetensors::serialize(m.state, meta));
}

// ---- building models in C++ --------------------------------------------------------------------
namespace layers {
namespace {
std::string ints2(int64_t a, int64_t b) { return detail::concat("[", a, ", ", b, "]"); }
}  // namespace

Layer conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride,
             int64_t padding, int64_t groups, bool bias) {
  return {"Conv2d", detail::concat("{\"in_channels\": ", in_channels, ", \"out_channels\": ",
                                   out_channels, ", \"kernel_size\": ",
                                   ints2(kernel_size, kernel_size), ", \"stride\": ",
                                   ints2(stride, stride), ", \"padding\": ", ints2(padding, padding),
                                   ", \"dilation\": [1, 1], \"groups\": ", groups, ", \"bias\": ",
                                   bias ? "true" : "false", ", \"padding_mode\": \"zeros\"}")};
}
Layer linear(int64_t in_features, int64_t out_features, bool bias) {
  return {"Linear", detail::concat("{\"in_features\": ", in_features, ", \"out_features\": ",
                                   out_features, ", \"bias\": ", bias ? "true" : "false", "}")};
}
Layer batch_norm2d(int64_t num_features, double eps, double momentum) {
  Value v = Value::make_object();
  v.set("num_features", Value::from_int(num_features));
  v.set("eps", Value::from_double(eps));
  v.set("momentum", Value::from_double(momentum));
  v.set("affine", Value::from_bool(true));
  v.set("track_running_stats", Value::from_bool(true));
  return {"BatchNorm2d", json::dump(v)};
}
Layer relu() { return {"ReLU", "{\"inplace\": false}"}; }
Layer max_pool2d(int64_t kernel_size, int64_t stride, int64_t padding) {
  return {"MaxPool2d", detail::concat("{\"kernel_size\": ", kernel_size, ", \"stride\": ",
                                      stride ? stride : kernel_size, ", \"padding\": ", padding,
                                      ", \"dilation\": 1, \"return_indices\": false, "
                                      "\"ceil_mode\": false}")};
}
Layer avg_pool2d(int64_t kernel_size, int64_t stride, int64_t padding) {
  return {"AvgPool2d", detail::concat("{\"kernel_size\": ", kernel_size, ", \"stride\": ",
                                      stride ? stride : kernel_size, ", \"padding\": ", padding,
                                      ", \"ceil_mode\": false, \"count_include_pad\": true, "
                                      "\"divisor_override\": null}")};
}
Layer adaptive_avg_pool2d(int64_t output_h, int64_t output_w) {
  return {"AdaptiveAvgPool2d", "{\"output_size\": " + ints2(output_h, output_w) + "}"};
}
Layer flatten(int64_t start_dim, int64_t end_dim) {
  return {"Flatten", detail::concat("{\"start_dim\": ", start_dim, ", \"end_dim\": ", end_dim, "}")};
}
Layer dropout(double p) {
  Value v = Value::make_object();
  v.set("p", Value::from_double(p));
  v.set("inplace", Value::from_bool(false));
  return {"Dropout", json::dump(v)};
}
}  // namespace layers

namespace {

// PyTorch's default initialisation for conv and linear layers: kaiming_uniform_(a = sqrt(5)),
// i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
void init_uniform(Tensor& t, int64_t fan_in) {
  const float bound = fan_in > 0 ? 1.0f / std::sqrt(static_cast<float>(fan_in)) : 0.0f;
  uniform_(t, -bound, bound);
}

}  // namespace

namespace {

// w' = w * s and b' = (b - mean) * s + beta per output channel, s = gamma / sqrt(var + eps):
// eval-mode BatchNorm after a conv (the chain's first node, so conv has its own weights),
// computed in double.
void fold_batch_norm(Model::Impl& m, Node& conv, const Node& bn) {
  Tensor w = m.st(conv.weight).clone();
  const int64_t K = w.size(0), per = w.numel() / std::max<int64_t>(K, 1);
  auto values = [&](int idx, double dflt) {
    std::vector<double> v(size_t(K), dflt);
    if (idx >= 0) {
      Tensor t = m.st(idx).contiguous();
      for (int64_t k = 0; k < K; ++k) v[size_t(k)] = t.data<float>()[k];
    }
    return v;
  };
  const std::vector<double> mean = values(bn.running_mean, 0.0),
                            var = values(bn.running_var, 1.0), gamma = values(bn.weight, 1.0),
                            beta = values(bn.bias, 0.0);
  std::vector<double> bias(size_t(K), 0.0);
  if (conv.bias >= 0) {
    Tensor b = m.st(conv.bias).contiguous();
    for (int64_t k = 0; k < K; ++k) bias[size_t(k)] = b.data<float>()[k];
  }
  Tensor nb = Tensor::empty({K});
  float* wp = w.data<float>();
  for (int64_t k = 0; k < K; ++k) {
    const double sk = gamma[size_t(k)] / std::sqrt(var[size_t(k)] + bn.eps);
    for (int64_t i = 0; i < per; ++i) wp[k * per + i] = static_cast<float>(wp[k * per + i] * sk);
    nb.data<float>()[k] =
        static_cast<float>((bias[size_t(k)] - mean[size_t(k)]) * sk + beta[size_t(k)]);
  }
  conv.folded_w = w;
  conv.folded_b = nb;
}

// Merges each Conv2d with the chain of nodes that alone read its output: BatchNorm2d (with
// running statistics) -> add (of a tensor, alpha 1) -> relu / ReLU6 / hardtanh, each optional.
void fuse_for_inference(Model::Impl& m) {
  const size_t nv = m.value_names.size();
  std::vector<int> readers(nv, 0), reader(nv, -1);
  for (size_t k = 0; k < m.nodes.size(); ++k)
    for (int v : m.nodes[k].inputs) ++readers[size_t(v)], reader[size_t(v)] = int(k);
  for (int v : m.outputs) readers[size_t(v)] += 2;  // a graph output stays a value
  std::vector<bool> gone(m.nodes.size(), false), merged(m.nodes.size(), false);
  // The one node that reads value v, when nothing else reads it and no chain took it (-1).
  auto sole = [&](int v) {
    const int k = readers[size_t(v)] == 1 ? reader[size_t(v)] : -1;
    return k >= 0 && !merged[size_t(k)] ? k : -1;
  };
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    Node conv = m.nodes[i];
    // (A merged node sits where its chain ended: it is not merged again.)
    if (conv.op != Op::Conv2d || conv.fused || conv.inputs.size() != 1 ||
        conv.outputs.size() != 1)
      continue;
    std::vector<int> chain;
    int v = conv.outputs[0];
    std::string name = conv.op_name;
    int j = sole(v);
    if (j >= 0) {
      const Node& bn = m.nodes[size_t(j)];
      if (bn.op == Op::BatchNorm && bn.op_name == "BatchNorm2d" && bn.running_mean >= 0 &&
          m.st(bn.running_mean).size(0) == m.st(conv.weight).size(0)) {
        fold_batch_norm(m, conv, bn);
        conv.fused = true;
        chain.push_back(j), v = bn.outputs[0], name += "+" + bn.op_name, j = sole(v);
      }
    }
    if (j >= 0) {
      const Node& add = m.nodes[size_t(j)];
      if (add.op == Op::Binary && add.binop == BinaryOp::Add && !add.has_scalar &&
          add.bin_alpha == 1.0 && add.inputs.size() == 2) {
        conv.inputs.push_back(add.inputs[0] == v ? add.inputs[1] : add.inputs[0]);
        chain.push_back(j), v = add.outputs[0], name += "+" + add.op_name, j = sole(v);
      }
    }
    if (j >= 0) {
      const Node& act = m.nodes[size_t(j)];
      if (act.op == Op::Relu || act.op == Op::Hardtanh) {
        conv.clamp = act.op == Op::Relu ? Node::Clamp::Relu : Node::Clamp::Hardtanh;
        conv.lo = act.lo, conv.hi = act.hi;
        chain.push_back(j), name += "+" + act.op_name;
      }
    }
    if (chain.empty()) continue;
    if (!conv.fused) {  // copies: the source model's tensors are only read
      conv.folded_w = m.st(conv.weight).clone();
      conv.folded_b = conv.bias >= 0 ? m.st(conv.bias).clone() : Tensor();
      conv.fused = true;
    }
    // The merged node runs where the chain's last node ran: every input exists by then.
    const Node& last = m.nodes[size_t(chain.back())];
    conv.outputs = last.outputs;
    conv.op_name = name;
    gone[i] = true;
    for (int c : chain) gone[size_t(c)] = c != chain.back(), merged[size_t(c)] = true;
    m.nodes[size_t(chain.back())] = conv;
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < m.nodes.size(); ++k)
    if (!gone[k]) kept.push_back(std::move(m.nodes[k]));
  m.nodes = std::move(kept);
  m.compute_last_use();
}

// Keeps, as a snapshot (copies), only the tensors the remaining unmerged nodes read. A merged
// conv runs on its own folded_w / folded_b, so its weight, bias and its BatchNorm's tensors
// leave the state (as torch.jit.freeze makes them constants of the graph): the frozen model
// holds each weight once, and its state_dict lists what it still reads by name.
void keep_state_in_use(Model::Impl& m) {
  std::vector<bool> used(m.state.size(), false);
  for (Node& n : m.nodes) {
    if (n.fused) {
      n.params.clear();
      n.weight = n.bias = n.running_mean = n.running_var = n.batches = -1;
    }
    for (const auto& kv : n.params) used[size_t(kv.second)] = true;
  }
  std::vector<int> index(m.state.size(), -1);  // old -> new, in the source's state_dict order
  std::vector<std::pair<std::string, Tensor>> state;
  std::vector<bool> trainable;
  for (size_t k = 0; k < m.state.size(); ++k) {
    if (!used[k]) continue;
    index[k] = static_cast<int>(state.size());
    state.emplace_back(m.state[k].first, m.state[k].second.clone());
    trainable.push_back(m.trainable[k]);
  }
  auto to = [&](int& idx) {
    if (idx >= 0) idx = index[size_t(idx)];
  };
  for (Node& n : m.nodes) {
    for (auto& kv : n.params) to(kv.second);
    to(n.weight), to(n.bias), to(n.running_mean), to(n.running_var), to(n.batches);
  }
  m.state = std::move(state);
  m.trainable = std::move(trainable);
  m.grads.assign(m.state.size(), Tensor());
}

}  // namespace

Model optimize_for_inference(const Model& model) {
  const Model::Impl& src = checked(model.impl_, "optimize_for_inference");
  auto impl = std::make_shared<Model::Impl>(src);  // shares src's tensors until the end
  impl->training = false;
  impl->saved.clear();
  impl->taped = false;
  impl->frozen = true;
  fuse_for_inference(*impl);
  keep_state_in_use(*impl);  // a snapshot, as torch.jit.freeze
  return Model(impl);
}

Model Model::sequential(const std::vector<Layer>& layer_list, const Shape& input_shape) {
  CNNCORE_CHECK_VALUE(!layer_list.empty(), "Model::sequential: give at least one layer");
  Value graph = Value::make_object();
  graph.set("format", Value::from_string("cnncore.graph"));
  graph.set("version", Value::from_int(kFormatVersion));
  Value input = Value::make_object();
  input.set("name", Value::from_string("x"));
  Value shape = Value::make_array();
  for (int64_t d : input_shape) shape.array.push_back(Value::from_int(d));
  input.set("shape", shape);
  graph.set("inputs", Value::make_array({input}));
  Value nodes = Value::make_array();
  std::vector<std::pair<std::string, Tensor>> state;
  std::string prev = "x";
  for (size_t k = 0; k < layer_list.size(); ++k) {
    const Layer& layer = layer_list[k];
    const std::string name = std::to_string(k);
    const std::string where = detail::concat("Model::sequential: layer ", k, " (", layer.op, ")");
    Value attrs = json::parse(layer.attrs_json, where + ": attrs_json");
    const Attrs a(attrs, where);
    Value params = Value::make_object();
    auto add = [&](const char* local, Tensor t) {
      params.set(local, Value::from_string(name + "." + local));
      state.emplace_back(name + "." + local, std::move(t));
    };
    if (layer.op == "Conv2d") {
      const int64_t cin = a.i("in_channels"), cout = a.i("out_channels"), g = a.i("groups", 1);
      auto [kh, kw] = a.pair("kernel_size", 1);
      CNNCORE_CHECK_VALUE(cin > 0 && cout > 0 && g > 0 && cin % g == 0 && cout % g == 0 &&
                              kh > 0 && kw > 0,
                          where, ": channels, groups and kernel_size must be positive, with "
                          "channels divisible by groups");
      Tensor w = Tensor::empty({cout, cin / g, kh, kw});
      init_uniform(w, cin / g * kh * kw);
      add("weight", w);
      if (a.b("bias", true)) {
        Tensor b = Tensor::empty({cout});
        init_uniform(b, cin / g * kh * kw);
        add("bias", b);
      }
    } else if (layer.op == "Linear") {
      const int64_t in = a.i("in_features"), out = a.i("out_features");
      CNNCORE_CHECK_VALUE(in > 0 && out > 0, where, ": in_features and out_features must be > 0");
      Tensor w = Tensor::empty({out, in});
      init_uniform(w, in);
      add("weight", w);
      if (a.b("bias", true)) {
        Tensor b = Tensor::empty({out});
        init_uniform(b, in);
        add("bias", b);
      }
    } else if (layer.op == "BatchNorm2d" || layer.op == "BatchNorm1d") {
      const int64_t c = a.i("num_features");
      CNNCORE_CHECK_VALUE(c > 0, where, ": num_features must be positive");
      add("weight", Tensor::full({c}, 1.0f));
      add("bias", Tensor::zeros({c}));
      add("running_mean", Tensor::zeros({c}));
      add("running_var", Tensor::full({c}, 1.0f));
      add("num_batches_tracked", Tensor::zeros({}, DType::Int64));
    }
    Value node = Value::make_object();
    node.set("name", Value::from_string(name));
    node.set("op", Value::from_string(layer.op));
    node.set("kind", Value::from_string("module"));
    node.set("inputs", Value::make_array({Value::from_string(prev)}));
    node.set("outputs", Value::make_array({Value::from_string(name)}));
    node.set("attrs", attrs);
    node.set("module", Value::from_string(name));
    node.set("params", params);
    nodes.array.push_back(std::move(node));
    prev = name;
  }
  graph.set("nodes", nodes);
  graph.set("outputs", Value::make_array({Value::from_string(prev)}));
  graph.set("shapes", Value::make_object());

  auto impl = std::make_shared<Impl>();
  impl->graph = graph;
  for (auto& kv : state) {
    impl->trainable.push_back(kv.first.find("running_") == std::string::npos &&
                              kv.first.find("num_batches_tracked") == std::string::npos);
    impl->state.push_back(std::move(kv));
  }
  impl->build("Model::sequential");
  // One example forward checks the wiring and records every value's shape, as trace() does.
  Model model(impl);
  std::vector<Tensor> values;
  Value shapes = Value::make_object();
  {
    const bool was = impl->training;
    impl->training = false;
    Tensor x = Tensor::zeros(input_shape);
    shapes.set("x", shape);
    for (const Node& n : impl->nodes) {
      x = impl->run(n, {x}, nullptr)[0];
      Value s = Value::make_array();
      for (int64_t d : x.shape()) s.array.push_back(Value::from_int(d));
      impl->example_shapes[size_t(n.outputs[0])] = x.shape();
      shapes.set(n.name, s);
    }
    impl->training = was;
  }
  impl->example_shapes[size_t(impl->inputs[0])] = input_shape;
  impl->graph.set("shapes", shapes);
  return model;
}

std::vector<std::pair<std::string, Tensor>> load_tensors(const std::string& path) {
  safetensors::File f = safetensors::read_file(path);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const std::string& key : parse_order(f, path)) out.emplace_back(key, *f.find_tensor(key));
  return out;
}

void save_tensors(const std::string& path,
                  const std::vector<std::pair<std::string, Tensor>>& tensors) {
  Value order = Value::make_array();
  for (const auto& kv : tensors) order.array.push_back(Value::from_string(kv.first));
  safetensors::atomic_write(path, safetensors::serialize(tensors, {{kOrderKey, json::dump(order)}}));
}

// ---- optimizers --------------------------------------------------------------------------------
SGD::SGD(Model model, const SgdParams& params) : model_(std::move(model)), params_(params) {
  validate(params_);
  const size_t n = model_.parameter_names().size();
  momentum_.assign(n, Tensor());
  started_.assign(n, false);
}

void SGD::step() {
  validate(params_);
  const std::vector<std::string> names = model_.parameter_names();
  for (size_t k = 0; k < names.size(); ++k) {
    const Tensor g = model_.grad(names[k]);
    if (!g.defined()) continue;
    const Tensor p = model_.parameter(names[k]);
    if (params_.momentum != 0.0 && !momentum_[k].defined()) momentum_[k] = Tensor::zeros(p.shape());
    sgd_step(p, g, momentum_[k], params_, !started_[k]);
    started_[k] = true;
  }
}

void SGD::zero_grad() { model_.zero_grad(); }

Adam::Adam(Model model, const AdamParams& params) : model_(std::move(model)), params_(params) {
  validate(params_);
  const size_t n = model_.parameter_names().size();
  exp_avg_.assign(n, Tensor());
  exp_avg_sq_.assign(n, Tensor());
  max_exp_avg_sq_.assign(n, Tensor());
  steps_.assign(n, 0.0);
}

void Adam::step() {
  validate(params_);
  const std::vector<std::string> names = model_.parameter_names();
  for (size_t k = 0; k < names.size(); ++k) {
    const Tensor g = model_.grad(names[k]);
    if (!g.defined()) continue;
    const Tensor p = model_.parameter(names[k]);
    if (!exp_avg_[k].defined()) {
      exp_avg_[k] = Tensor::zeros(p.shape());
      exp_avg_sq_[k] = Tensor::zeros(p.shape());
      if (params_.amsgrad) max_exp_avg_sq_[k] = Tensor::zeros(p.shape());
    }
    steps_[k] += 1.0;
    adam_step(p, g, exp_avg_[k], exp_avg_sq_[k], max_exp_avg_sq_[k], steps_[k], params_);
  }
}

void Adam::zero_grad() { model_.zero_grad(); }

std::pair<Tensor, Tensor> cross_entropy_with_grad(const Tensor& logits, const Tensor& target) {
  check_dim(logits, 2, "cross_entropy_with_grad", "logits");
  const Tensor logp = log_softmax_forward(logits, 1);
  auto [loss, total_weight] = cross_entropy_logp_forward(logp, target, std::nullopt,
                                                         Reduction::Mean, -100, 0.0);
  const Tensor one = Tensor::full({}, 1.0f);
  const Tensor dlogp = cross_entropy_logp_backward(one, logp, target, std::nullopt,
                                                   Reduction::Mean, -100, 0.0, total_weight);
  return {loss, log_softmax_backward(dlogp, logp, 1)};
}

}  // namespace cnncore
