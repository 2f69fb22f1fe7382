// classify: load a model saved from Python (model.save("m.cnn")) and classify one image.
//
//   classify MODEL.cnn IMAGE.pgm     8-bit binary (P5) or text (P2) greyscale, scaled to [0, 1]
//   classify MODEL.cnn IMAGE.f32     raw float32 values, C*H*W of the model's input shape
//
// A PGM whose size differs from the model's input is resized (nearest pixel); a greyscale image
// feeds every input channel. Prints the class, its probability and the logits.
#include <cnncore/cnncore.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<unsigned char> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw cnncore::ValueError("classify: cannot open " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A PGM as floats in [0, 1] (row-major H x W).
std::vector<float> read_pgm(const std::string& path, int64_t& h, int64_t& w) {
  const std::vector<unsigned char> bytes = read_all(path);
  std::string text(bytes.begin(), bytes.end());
  std::istringstream in(text);
  std::string magic;
  in >> magic;
  if (magic != "P5" && magic != "P2") throw cnncore::ValueError(path + ": not a PGM (P5/P2)");
  auto next_int = [&]() {
    in >> std::ws;
    while (in.peek() == '#') {  // comment lines
      std::string line;
      std::getline(in, line);
      in >> std::ws;
    }
    long long v = -1;
    in >> v;
    return static_cast<int64_t>(v);
  };
  w = next_int();
  h = next_int();
  const int64_t maxval = next_int();
  if (w <= 0 || h <= 0 || w > 65535 || h > 65535 || maxval <= 0 || maxval > 255)
    throw cnncore::ValueError(path + ": unsupported PGM header (8-bit images only)");
  std::vector<float> pixels(static_cast<size_t>(w * h));
  if (magic == "P5") {
    in.get();  // the single whitespace byte after maxval
    const size_t start = static_cast<size_t>(in.tellg());
    if (start + pixels.size() > bytes.size()) throw cnncore::ValueError(path + ": truncated PGM");
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = bytes[start + i] / float(maxval);
  } else {
    for (float& p : pixels) {
      const int64_t v = next_int();
      if (v < 0) throw cnncore::ValueError(path + ": truncated PGM");
      p = static_cast<float>(v) / float(maxval);
    }
  }
  return pixels;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.cnn IMAGE.pgm|IMAGE.f32\n", argv[0]);
    return 2;
  }
  try {
    cnncore::Model model = cnncore::load_model(argv[1]);
    cnncore::Shape in_shape = model.input_shapes().at(0);  // as saved, e.g. (1, 1, 32, 32)
    if (in_shape.size() != 4) throw cnncore::ValueError("classify: the model's input is not 4-D");
    in_shape[0] = 1;
    const int64_t c = in_shape[1], h = in_shape[2], w = in_shape[3];
    cnncore::Tensor x = cnncore::Tensor::empty(in_shape);
    float* xd = x.data<float>();
    const std::string image = argv[2];
    if (ends_with(image, ".pgm")) {
      int64_t ih = 0, iw = 0;
      const std::vector<float> px = read_pgm(image, ih, iw);
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t xx = 0; xx < w; ++xx)
            xd[(ch * h + y) * w + xx] = px[size_t((y * ih / h) * iw + xx * iw / w)];
    } else {
      const std::vector<unsigned char> raw = read_all(image);
      if (raw.size() != size_t(c * h * w) * sizeof(float))
        throw cnncore::ValueError("classify: " + image + " must hold " +
                                  std::to_string(c * h * w) + " float32 values");
      std::copy(raw.begin(), raw.end(), reinterpret_cast<unsigned char*>(xd));
    }
    const cnncore::Tensor logits = model.forward(x).contiguous();
    const float* l = logits.data<float>();
    const int64_t n = logits.numel();
    int64_t best = 0;
    double denom = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      if (l[i] > l[best]) best = i;
    }
    for (int64_t i = 0; i < n; ++i) denom += std::exp(double(l[i]) - double(l[best]));
    std::printf("class %lld (p=%.4f)\nlogits:", static_cast<long long>(best), 1.0 / denom);
    for (int64_t i = 0; i < n; ++i) std::printf(" %.7g", l[i]);
    std::printf("\n");
  } catch (const cnncore::Error& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
  return 0;
}
