// The embedding API without Python: build a model in C++, train it, save and reload it, and
// feed the loader damaged bytes; the JSON reader on edge cases.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "check.hpp"
#include "json.hpp"

using namespace cnncore;

int main() {
  manual_seed(3);
  namespace L = layers;
  Model m = Model::sequential({L::conv2d(2, 4, 3, 1, 1), L::batch_norm2d(4), L::relu(),
                               L::max_pool2d(2), L::flatten(), L::linear(4 * 3 * 3, 3)},
                              {1, 2, 6, 6});
  CHECK(m.parameter_names().size() == 6, "got ", m.parameter_names().size());
  CHECK(m.num_parameters() == 4 * 2 * 9 + 4 + 4 + 4 + 36 * 3 + 3);
  CHECK(m.input_shapes().at(0) == Shape({1, 2, 6, 6}));

  // Two separable classes: the loss must fall under SGD.
  Tensor x = randn({8, 2, 6, 6});
  Tensor y = Tensor::empty({8}, DType::Int64);
  for (int i = 0; i < 8; ++i) {
    y.data<int64_t>()[i] = i % 3;
    for (int j = 0; j < 36; ++j) x.data<float>()[i * 72 + j] += float(i % 3);
  }
  SgdParams p;
  p.lr = 0.1;
  p.momentum = 0.9;
  SGD opt(m, p);
  m.train();
  float first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    auto [loss, dlogits] = cross_entropy_with_grad(m.forward(x), y);
    m.backward(dlogits);
    opt.step();
    (step == 0 ? first : last) = loss.data<float>()[0];
  }
  CHECK(last < 0.5f * first, "loss ", first, " -> ", last);
  CHECK_THROWS(ValueError, m.backward(Tensor::zeros({8, 3})));  // one backward per forward

  // Save, reload: same outputs in eval mode, same state.
  m.eval();
  const Tensor before = m.forward(x);
  const std::string path = "test_graph_model.cnn";
  m.save(path);
  Model back = load_model(path);
  CHECK(max_abs_diff(back.forward(x), before) == 0.0, "reloaded model differs");
  CHECK(back.state_dict().size() == m.state_dict().size());

  // optimize_for_inference: conv+BatchNorm+ReLU become one node, the output stays the same
  // (the trained running statistics make the folding non-trivial), and the copy is frozen.
  Model fast = optimize_for_inference(m);
  CHECK(fast.summary().find("Conv2d+BatchNorm2d+ReLU") != std::string::npos, "summary:\n",
        fast.summary());
  CHECK(max_abs_diff(fast.forward(x), before) < 1e-4, "optimized model differs by ",
        max_abs_diff(fast.forward(x), before));
  // The merged conv's weights are its own: only the Linear's tensors stay in the state.
  CHECK(fast.state_dict().size() == 2 && fast.state_dict()[0].first == "5.weight" &&
            fast.state_dict()[1].first == "5.bias",
        "frozen state_dict has ", fast.state_dict().size(), " tensors");
  CHECK(fast.num_parameters() == 36 * 3 + 3, "got ", fast.num_parameters());
  CHECK(max_abs_diff(fast.parameter("5.weight"), m.parameter("5.weight")) == 0.0);
  CHECK_THROWS(IndexError, fast.parameter("0.weight"));
  CHECK_THROWS(ValueError, fast.train());
  CHECK_THROWS(ValueError, fast.save(path));
  const Tensor fast_out = fast.forward(x);
  m.parameter("0.weight").data<float>()[0] += 1.0f;  // the copy is a snapshot
  CHECK(max_abs_diff(fast.forward(x), fast_out) == 0.0, "the optimized copy shares weights");
  m.parameter("0.weight").data<float>()[0] -= 1.0f;

  // Damaged bytes: every truncation is an error, never a crash.
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  int errors = 0;
  for (size_t n = 0; n < bytes.size(); n += 7) {
    try {
      load_model_from_memory(bytes.data(), n, "truncated");
    } catch (const ValueError&) {
      ++errors;
    }
  }
  CHECK(errors == int((bytes.size() + 6) / 7), "every truncated file must be rejected");
  CHECK_THROWS(ValueError, load_model("no/such/file.cnn"));
  CHECK_THROWS(IndexError, m.parameter("nope"));
  CHECK_THROWS(ValueError, Model::sequential({L::linear(5, 2)}, {1, 4}));  // wrong width

  // JSON: escapes, numbers, nesting limit, trailing data.
  const json::Value v = json::parse(R"({"a": [1, -2.5e3, true, null], "s": "\u00e9\ud83d\ude00\n"})",
                                    "t");
  CHECK(v.find("a")->array[0].is_integer && v.find("a")->array[1].number == -2500.0);
  CHECK(v.find("s")->string == "\xc3\xa9\xf0\x9f\x98\x80\n");
  CHECK(json::parse(json::dump(v), "t2").find("s")->string == v.find("s")->string);
  CHECK_THROWS(ValueError, json::parse("{\"a\": 1,}", "t"));
  CHECK_THROWS(ValueError, json::parse("[1] x", "t"));
  CHECK_THROWS(ValueError, json::parse("{\"a\": 1, \"a\": 2}", "t"));
  CHECK_THROWS(ValueError, json::parse(std::string(100, '['), "t"));
  CHECK_THROWS(ValueError, json::parse("\"\\ud800\"", "t"));
  CHECK_THROWS(ValueError, json::parse("1e999", "t"));
  return report("test_graph");
}
