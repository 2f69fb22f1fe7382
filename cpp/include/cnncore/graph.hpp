// Models as graphs: load one saved from Python, build one in C++, run forward, backward and
// optimizer steps without Python.
//
//   cnncore::Model m = cnncore::load_model("m.cnn");      // model.save("m.cnn") in Python
//   cnncore::Tensor logits = m.forward(x);                 // x (N, C, H, W) float32
//
// A .cnn file is a safetensors file: the tensors are the model's state_dict (PyTorch's keys) and
// the header's __metadata__ holds the graph as JSON ("cnncore.graph", written by
// cnncore.graph.trace) and a CRC-32 of the tensor bytes ("cnncore.crc32"). Loading checks every
// byte it reads: a damaged, truncated or hostile file throws cnncore::ValueError naming the file
// and what is wrong, never crashes. Each node runs the same op functions (cnncore/ops/*.hpp,
// forward and backward) that the Python layer calls, so outputs match Python's.
//
// Training: in train() mode forward keeps what backward needs; backward(grad_output) then adds
// each parameter's gradient into grad(name) (zero_grad() clears them), and SGD / Adam apply the
// fused optimizer kernels (cnncore/ops/optim.hpp), with torch.optim's update rules. BatchNorm
// updates its running statistics in train mode, Dropout draws from cnncore::manual_seed's
// generator. Model is a handle: copies share the same parameters (as a Python reference would).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnncore/ops/optim.hpp"
#include "cnncore/tensor.hpp"

namespace cnncore {

// One layer for Model::sequential: a cnncore.nn class name and its constructor arguments as a
// JSON object, with Python's argument names ({"in_channels": 1, "out_channels": 6, ...}).
struct Layer {
  std::string op;
  std::string attrs_json = "{}";
};

// Builders for the common layers, with torch.nn's argument names, order and defaults.
namespace layers {
CNNCORE_API Layer conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                         int64_t stride = 1, int64_t padding = 0, int64_t groups = 1,
                         bool bias = true);
CNNCORE_API Layer linear(int64_t in_features, int64_t out_features, bool bias = true);
CNNCORE_API Layer batch_norm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1);
CNNCORE_API Layer relu();
CNNCORE_API Layer max_pool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
CNNCORE_API Layer avg_pool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
CNNCORE_API Layer adaptive_avg_pool2d(int64_t output_h, int64_t output_w);
CNNCORE_API Layer flatten(int64_t start_dim = 1, int64_t end_dim = -1);
CNNCORE_API Layer dropout(double p = 0.5);
}  // namespace layers

class CNNCORE_API Model {
 public:
  Model();  // an empty model; load_model or sequential give real ones

  // Layers applied in order, named "0", "1", ... as nn.Sequential names them (so state_dict keys
  // match Python's), parameters initialised as PyTorch does (kaiming-uniform, a = sqrt(5)).
  // input_shape: an example input (N, C, H, W) used to check the wiring and record shapes.
  static Model sequential(const std::vector<Layer>& layers, const Shape& input_shape);

  // Runs the graph. inputs in the order of the Python forward's arguments.
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs);
  Tensor forward(const Tensor& input);  // one input, one output
  Tensor operator()(const Tensor& input) { return forward(input); }

  // Gradients of the last forward (which must have run in train mode): one grad per output,
  // with the output's shape. Adds into the parameters' grads.
  void backward(const std::vector<Tensor>& grad_outputs);
  void backward(const Tensor& grad_output);

  void train(bool mode = true);
  void eval() { train(false); }
  bool is_training() const;
  void zero_grad();

  // Trainable parameters (the model's Parameters, in state_dict order); buffers (BatchNorm's
  // running statistics) are in state_dict only. Tensors share the model's memory.
  std::vector<std::string> parameter_names() const;
  Tensor parameter(const std::string& name) const;  // IndexError when unknown
  Tensor grad(const std::string& name) const;       // undefined until a backward reached it
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  int64_t num_parameters() const;  // elements in the trainable parameters

  std::vector<std::string> input_names() const;
  std::vector<Shape> input_shapes() const;  // the example shapes recorded when it was saved
  std::string summary() const;              // one line per node: outputs = op(inputs)

  // Writes the same .cnn format Python writes (cnncore.load_model reads it), atomically.
  void save(const std::string& path) const;

  struct Impl;

 private:
  explicit Model(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
  friend CNNCORE_API Model load_model(const std::string& path);
  friend CNNCORE_API Model optimize_for_inference(const Model& model);
  friend CNNCORE_API Model load_model_from_memory(const void* data, size_t size,
                                                  const std::string& what);
};

// Reads a .cnn file (see above).
CNNCORE_API Model load_model(const std::string& path);

// A copy of model for inference only (torch.jit.optimize_for_inference): the parameters are a
// snapshot (later changes to model do not reach it), each BatchNorm2d in eval mode after a
// Conv2d is folded into the conv's weight and bias, and a following add (residual) and ReLU /
// ReLU6 / hardtanh run in the conv's epilogue (conv2d_forward with Conv2dEpilogue), so they
// cost no pass of their own. Only nodes whose output nothing else reads are merged; outputs
// match the original's eval-mode forward within float rounding. train(true), backward and save
// refuse it (ValueError); summary() names the merged nodes ("Conv2d+BatchNorm2d+add+ReLU").
// As in torch.jit.freeze, a merged conv's folded weight and bias are the graph's own, so each
// weight is held once: state_dict() and parameter() know only the unmerged nodes' tensors.
CNNCORE_API Model optimize_for_inference(const Model& model);
// The same from bytes in memory; what names them in error messages.
CNNCORE_API Model load_model_from_memory(const void* data, size_t size,
                                         const std::string& what = "model");

// Named tensors in a safetensors file (float32/int64; other dtypes are converted as in
// cnncore.load), in file order, e.g. data exported from Python with cnncore.save(dict, path).
CNNCORE_API std::vector<std::pair<std::string, Tensor>> load_tensors(const std::string& path);
CNNCORE_API void save_tensors(const std::string& path,
                              const std::vector<std::pair<std::string, Tensor>>& tensors);

// Optimizers over a model's trainable parameters, with torch.optim's update rules and state.
class CNNCORE_API SGD {
 public:
  SGD(Model model, const SgdParams& params);
  void step();       // parameters without a grad are skipped, as torch does
  void zero_grad();  // the model's grads
  SgdParams& params() { return params_; }

 private:
  Model model_;
  SgdParams params_;
  std::vector<Tensor> momentum_;
  std::vector<bool> started_;
};

class CNNCORE_API Adam {
 public:
  Adam(Model model, const AdamParams& params);
  void step();
  void zero_grad();
  AdamParams& params() { return params_; }

 private:
  Model model_;
  AdamParams params_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
  std::vector<double> steps_;
};

// Mean cross-entropy of logits (N, C) against int64 class indices (N): (loss (), dlogits (N, C)),
// the gradient of the mean loss, ready for Model::backward. Uses the same log_softmax and
// cross_entropy kernels as cnncore.nn.CrossEntropyLoss.
CNNCORE_API std::pair<Tensor, Tensor> cross_entropy_with_grad(const Tensor& logits,
                                                              const Tensor& target);

}  // namespace cnncore
