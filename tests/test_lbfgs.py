"""optim.LBFGS: step by step against torch.optim.LBFGS (both line-search modes), convergence on
Rosenbrock and a quadratic without torch, the state_dict round trip, bad arguments."""

import numpy as np
import pytest

import cnncore
from cnncore import optim


def _rosenbrock(x):
    return ((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


def _run(make_opt, steps, start=(-1.2, 1.0)):
    x = cnncore.tensor(np.array(start, np.float32), requires_grad=True)
    opt = make_opt([x])

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(x)
        loss.backward()
        return loss
    losses = [float(opt.step(closure)) for _ in range(steps)]
    return x.detach().numpy(), losses, opt


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_converges_on_rosenbrock(line_search_fn):
    x, losses, opt = _run(lambda p: optim.LBFGS(p, lr=1 if line_search_fn else 0.1,
                                                max_iter=20, line_search_fn=line_search_fn), 10)
    assert losses[-1] < 1e-3 * losses[0]
    if line_search_fn:
        np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-2)
    assert opt.state[opt.param_groups[0]["params"][0]]["func_evals"] > 10


def test_lbfgs_solves_a_quadratic():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((6, 6)).astype(np.float32)
    a = m @ m.T + 6 * np.eye(6, dtype=np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    w = cnncore.tensor(np.zeros(6, np.float32), requires_grad=True)
    opt = optim.LBFGS([w], line_search_fn="strong_wolfe")
    A, B = cnncore.tensor(a), cnncore.tensor(b)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (w * (A @ w)).sum() - (B * w).sum()
        loss.backward()
        return loss
    opt.step(closure)
    np.testing.assert_allclose(w.detach().numpy(), np.linalg.solve(a, b), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("line_search_fn,lr,history", [(None, 0.5, 100),
                                                       ("strong_wolfe", 1.0, 3)])
def test_lbfgs_matches_torch_step_by_step(line_search_fn, lr, history):
    """Least squares plus a quartic (well conditioned, so float32 rounding does not grow)."""
    torch = pytest.importorskip("torch", reason="compares with PyTorch")
    rng = np.random.default_rng(4)
    a = rng.standard_normal((8, 5)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    x0 = rng.standard_normal(5).astype(np.float32)

    def objective(x, mat, vec):
        r = mat @ x - vec
        return 0.5 * (r * r).sum() + 0.25 * (x * x * x * x).sum()

    def make(lib, x, mat, vec):
        opt = (torch.optim if lib is torch else optim).LBFGS(
            [x], lr=lr, max_iter=5, history_size=history, line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            loss = objective(x, mat, vec)
            loss.backward()
            return loss
        return opt, closure
    xt = torch.tensor(x0, requires_grad=True)
    topt, tclosure = make(torch, xt, torch.tensor(a), torch.tensor(b))
    x = cnncore.tensor(x0, requires_grad=True)
    opt, closure = make(cnncore, x, cnncore.tensor(a), cnncore.tensor(b))
    # two steps (10 iterations): after that both sit at the optimum, where which float32
    # rounding trips a tolerance first is noise
    for step in range(2):
        ref, got = topt.step(tclosure).item(), opt.step(closure).item()
        assert got == pytest.approx(ref, rel=1e-4, abs=1e-6), step
        np.testing.assert_allclose(x.detach().numpy(), xt.detach().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=f"step {step}")
        ts, cs = topt.state[xt], opt.state[x]
        assert cs["func_evals"] == ts["func_evals"] and cs["n_iter"] == ts["n_iter"]
        np.testing.assert_allclose(cs["d"], ts["d"].numpy(), rtol=1e-3, atol=1e-5)


def test_lbfgs_state_dict_round_trip_continues_identically():
    _, _, opt = _run(lambda p: optim.LBFGS(p, max_iter=4, line_search_fn="strong_wolfe"), 2)
    x0 = opt.param_groups[0]["params"][0]
    sd = opt.state_dict()
    y = cnncore.tensor(x0.detach().numpy().copy(), requires_grad=True)
    twin = optim.LBFGS([y], max_iter=4, line_search_fn="strong_wolfe")
    twin.load_state_dict(sd)
    assert twin.state[y]["n_iter"] == opt.state[x0]["n_iter"]
    for o, p in ((opt, x0), (twin, y)):
        def closure(o=o, p=p):
            o.zero_grad()
            loss = _rosenbrock(p)
            loss.backward()
            return loss
        o.step(closure)
    np.testing.assert_array_equal(x0.detach().numpy(), y.detach().numpy())


def test_lbfgs_bad_arguments():
    x = cnncore.tensor(np.zeros(2, np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS([x], line_search_fn="armijo")
    with pytest.raises(ValueError, match="learning rate"):
        optim.LBFGS([x], lr=-1)
    with pytest.raises(ValueError, match="max_iter"):
        optim.LBFGS([x], max_iter=0)
    with pytest.raises(TypeError, match="closure"):
        optim.LBFGS([x]).step()
    assert optim.LBFGS([x]).defaults["max_eval"] == 25
