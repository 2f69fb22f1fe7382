// cnncore::Model (graph.hpp): loading model files, forward/backward, for the Python tests that
// compare the C++ runtime with Python and fuzz the loader. Translation only.
#include "common.hpp"

namespace cnncore::bindings {

void bind_graph(py::module_& m) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  py::class_<Model>(m, "Model", "A model graph run by the C++ runtime (cnncore::Model)")
      .def("forward", py::overload_cast<const std::vector<Tensor>&>(&Model::forward),
           py::arg("inputs"), nogil, "outputs for a list of inputs")
      .def("backward", py::overload_cast<const std::vector<Tensor>&>(&Model::backward),
           py::arg("grad_outputs"), nogil, "adds parameter gradients of the last forward")
      .def("train", &Model::train, py::arg("mode") = true)
      .def("eval", &Model::eval)
      .def_property_readonly("training", &Model::is_training)
      .def("zero_grad", &Model::zero_grad)
      .def("parameter_names", &Model::parameter_names)
      .def("parameter", &Model::parameter, py::arg("name"))
      .def("grad", [](const Model& self, const std::string& name) -> std::optional<Tensor> {
        Tensor g = self.grad(name);
        return g.defined() ? std::optional<Tensor>(g) : std::nullopt;
      }, py::arg("name"), "the gradient of a parameter, or None before a backward reached it")
      .def("state_dict", &Model::state_dict)
      .def("num_parameters", &Model::num_parameters)
      .def("input_names", &Model::input_names)
      .def("input_shapes", &Model::input_shapes)
      .def("summary", &Model::summary)
      .def("save", &Model::save, py::arg("path"), nogil, "writes a .cnn file");
  m.def("optimize_for_inference", &optimize_for_inference, py::arg("model"), nogil,
        "a frozen copy with BatchNorm folded into the convs and add/ReLU in their epilogue");
  m.def("load_model", &load_model, py::arg("path"), nogil, "reads a .cnn file into a Model");
  m.def("load_model_from_bytes", [](py::bytes data, const std::string& what) {
    const std::string buf = data;  // a copy, so the GIL can be released while parsing
    py::gil_scoped_release release;
    return load_model_from_memory(buf.data(), buf.size(), what);
  }, py::arg("data"), py::arg("what") = "model", "reads a .cnn file held in memory");
  py::class_<SGD>(m, "ModelSGD", "cnncore::SGD over a Model's parameters")
      .def(py::init([](Model model, double lr, double momentum, double weight_decay,
                       bool nesterov) {
        SgdParams p;
        p.lr = lr, p.momentum = momentum, p.weight_decay = weight_decay, p.nesterov = nesterov;
        return SGD(std::move(model), p);
      }), py::arg("model"), py::arg("lr"), py::arg("momentum") = 0.0,
          py::arg("weight_decay") = 0.0, py::arg("nesterov") = false)
      .def("step", &SGD::step, nogil)
      .def("zero_grad", &SGD::zero_grad);
  py::class_<Adam>(m, "ModelAdam", "cnncore::Adam over a Model's parameters")
      .def(py::init([](Model model, double lr, double weight_decay) {
        AdamParams p;
        p.lr = lr, p.weight_decay = weight_decay;
        return Adam(std::move(model), p);
      }), py::arg("model"), py::arg("lr"), py::arg("weight_decay") = 0.0)
      .def("step", &Adam::step, nogil)
      .def("zero_grad", &Adam::zero_grad);
  m.def("cross_entropy_with_grad", &cross_entropy_with_grad, py::arg("logits"),
        py::arg("target"), "(mean loss, dlogits) for int64 targets");
}

}  // namespace cnncore::bindings
