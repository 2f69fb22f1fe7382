// train_lenet: build LeNet-5 in C++, train it on the 8x8 digits exported by Python, print the
// test accuracy after each epoch and optionally save the model for Python (cnncore.load_model)
// or classify.
//
//   python examples/cpp/export_digits.py data/            # data/digits.safetensors
//   train_lenet data/digits.safetensors [EPOCHS=5] [OUT.cnn]
#include <cnncore/cnncore.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

const cnncore::Tensor& find(const std::vector<std::pair<std::string, cnncore::Tensor>>& ts,
                            const std::string& name) {
  for (const auto& kv : ts)
    if (kv.first == name) return kv.second;
  throw cnncore::ValueError("train_lenet: the data file has no tensor '" + name + "'");
}

// Rows idx[begin, end) of x (N, ...) and y (N) as a batch.
std::pair<cnncore::Tensor, cnncore::Tensor> batch(const cnncore::Tensor& x,
                                                  const cnncore::Tensor& y,
                                                  const std::vector<int64_t>& idx, size_t begin,
                                                  size_t end) {
  cnncore::Shape shape = x.shape();
  shape[0] = static_cast<int64_t>(end - begin);
  const int64_t row = x.numel() / x.size(0);
  cnncore::Tensor bx = cnncore::Tensor::empty(shape);
  cnncore::Tensor by = cnncore::Tensor::empty({shape[0]}, cnncore::DType::Int64);
  for (size_t i = begin; i < end; ++i) {
    std::memcpy(bx.data<float>() + (i - begin) * row, x.data<float>() + idx[i] * row,
                sizeof(float) * size_t(row));
    by.data<int64_t>()[i - begin] = y.data<int64_t>()[idx[i]];
  }
  return {bx, by};
}

double accuracy(cnncore::Model& model, const cnncore::Tensor& x, const cnncore::Tensor& y) {
  model.eval();
  const cnncore::Tensor pred = cnncore::argmax(model.forward(x), 1, false);
  int64_t right = 0;
  for (int64_t i = 0; i < y.numel(); ++i) right += pred.data<int64_t>()[i] == y.data<int64_t>()[i];
  return double(right) / double(y.numel());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s DIGITS.safetensors [EPOCHS] [OUT.cnn]\n", argv[0]);
    return 2;
  }
  try {
    const auto data = cnncore::load_tensors(argv[1]);
    const cnncore::Tensor& train_x = find(data, "train_images");
    const cnncore::Tensor& train_y = find(data, "train_labels");
    const cnncore::Tensor& test_x = find(data, "test_images");
    const cnncore::Tensor& test_y = find(data, "test_labels");
    const int epochs = argc > 2 ? std::stoi(argv[2]) : 5;

    cnncore::manual_seed(0);
    namespace L = cnncore::layers;
    cnncore::Model model = cnncore::Model::sequential(
        {L::conv2d(1, 6, 5), L::relu(), L::avg_pool2d(2), L::conv2d(6, 16, 5), L::relu(),
         L::avg_pool2d(2), L::flatten(), L::linear(16 * 5 * 5, 120), L::relu(),
         L::linear(120, 84), L::relu(), L::linear(84, 10)},
        {1, 1, 32, 32});
    std::printf("LeNet-5: %lld parameters; %lld training and %lld test images\n",
                static_cast<long long>(model.num_parameters()),
                static_cast<long long>(train_x.size(0)), static_cast<long long>(test_x.size(0)));

    cnncore::SgdParams sgd;
    sgd.lr = 0.05;
    sgd.momentum = 0.9;
    cnncore::SGD optimizer(model, sgd);
    std::vector<int64_t> order(static_cast<size_t>(train_x.size(0)));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 rng(0);
    const size_t batch_size = 32;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      std::shuffle(order.begin(), order.end(), rng);
      model.train();
      double total = 0.0;
      size_t batches = 0;
      for (size_t b = 0; b < order.size(); b += batch_size) {
        auto [x, y] = batch(train_x, train_y, order, b, std::min(order.size(), b + batch_size));
        optimizer.zero_grad();
        auto [loss, dlogits] = cnncore::cross_entropy_with_grad(model.forward(x), y);
        model.backward(dlogits);
        optimizer.step();
        total += loss.data<float>()[0];
        ++batches;
      }
      std::printf("epoch %d: loss %.4f, test accuracy %.4f\n", epoch, total / double(batches),
                  accuracy(model, test_x, test_y));
    }
    if (argc > 3) {
      model.save(argv[3]);
      std::printf("saved %s\n", argv[3]);
    }
  } catch (const cnncore::Error& e) {
    std::fprintf(stderr, "train_lenet: %s\n", e.what());
    return 1;
  }
  return 0;
}
