// Tensor basics without Python: views, blocked layout round trip, errors, rng determinism.
#include "check.hpp"

using namespace cnncore;

int main() {
  manual_seed(1);
  Tensor a = randn({2, 13, 5, 7});
  CHECK(a.is_contiguous());
  Tensor b = a.to_blocked(8);
  CHECK(b.block() == 8 && b.shape() == a.shape());
  CHECK(max_abs_diff(a, b.to_strided()) == 0.0, "blocked round trip");
  Tensor p = a.permute({0, 2, 3, 1});
  CHECK(!p.is_contiguous());
  CHECK(p.contiguous().shape() == Shape({2, 5, 7, 13}));
  CHECK(p.contiguous().data<float>()[1] == a.data<float>()[5 * 7], "permute moves channel stride");
  CHECK_THROWS(ValueError, a.view({3, -1}));
  CHECK_THROWS(ValueError, Tensor::empty({1LL << 40, 1LL << 40}));
  CHECK_THROWS(TypeError, a.data<int64_t>());
  manual_seed(7);
  Tensor r1 = randn({1000});
  set_num_threads(1);
  manual_seed(7);
  Tensor r2 = randn({1000});
  CHECK(max_abs_diff(r1, r2) == 0.0, "rng independent of threads");
  Tensor y = relu_forward(a);
  CHECK(y.data<float>()[0] == std::fmax(a.data<float>()[0], 0.0f));
  return report("test_tensor");
}
