"""cnncore.optim against torch.optim step by step: SGD, Adam, AdamW, RMSprop over several
hyperparameter combinations, state_dict round trips, every scheduler's lr sequence, bad values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import cnncore
from cnncore import _core, optim
from cnncore.nn import Parameter
from cnncore.optim import lr_scheduler
from helpers import check_close

torch = pytest.importorskip("torch",
                            reason="optimizer and scheduler parity is checked against torch")

# Ragged sizes (vector body + scalar tail); BIG_SHAPES adds one above the threading grain
# (1 << 15 elements), used where threads are the point.
SHAPES = [(13,), (4, 7), (3, 5, 2, 2), (1001,)]
BIG_SHAPES = SHAPES + [(40001,)]
STEPS = 8


def make_data(seed: int = 0, shapes=SHAPES, steps: int = STEPS):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps)]
    return init, grads


def ours_params(init):
    return [Parameter(a.copy()) for a in init]


def torch_params(init):
    return [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]


def step_both(ours, theirs, o_params, t_params, grads_at_step):
    for p, g in zip(o_params, grads_at_step):
        p.grad = cnncore.tensor(g)
    for p, g in zip(t_params, grads_at_step):
        p.grad = torch.tensor(g)
    ours.step()
    theirs.step()


def compare_params(o_params, t_params, what, rtol=1e-5, atol=1e-6):
    for i, (a, b) in enumerate(zip(o_params, t_params)):
        check_close(a, b, rtol=rtol, atol=atol, what=f"{what}: param {i} {tuple(a.shape)}")


def compare_state(ours, theirs, o_params, t_params, what, rtol=1e-5, atol=1e-6):
    for i, (a, b) in enumerate(zip(o_params, t_params)):
        so, st = ours.state[a], theirs.state[b]
        assert set(so) == set(st), f"{what}: state keys {sorted(so)} != torch's {sorted(st)}"
        for key in st:
            if key == "step":
                assert float(so[key]) == float(st[key]), f"{what}: step"
            else:
                # Buffers that accumulate (momentum of g / avg) grow large while their elements
                # cancel: compare to float32 rounding of the buffer's scale.
                scale = max(1.0, float(np.abs(st[key].numpy()).max()))
                check_close(so[key], st[key], rtol=rtol, atol=atol * scale,
                            what=f"{what}: {key} {i}")


def run_parity(make_ours, make_theirs, what, seed=0, shapes=SHAPES):
    init, grads = make_data(seed, shapes)
    o_params, t_params = ours_params(init), torch_params(init)
    ours, theirs = make_ours(o_params), make_theirs(t_params)
    for s in range(STEPS):
        step_both(ours, theirs, o_params, t_params, grads[s])
        compare_params(o_params, t_params, f"{what} step {s + 1}")
    compare_state(ours, theirs, o_params, t_params, what)


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    dict(lr=0.01, momentum=0.5, maximize=True),
    dict(lr=0.01, weight_decay=0.1, maximize=True),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_torch(kw):
    run_parity(lambda ps: optim.SGD(ps, **kw), lambda ps: torch.optim.SGD(ps, **kw), f"SGD {kw}")


ADAM_CASES = [
    dict(),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=1e-2, weight_decay=1e-2),
    dict(lr=1e-2, amsgrad=True),
    dict(lr=1e-2, amsgrad=True, weight_decay=0.1, maximize=True),
    dict(lr=1e-2, betas=(0.3, 0.9)),  # 1 - beta1 >= 0.5 takes lerp's other formula
]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
def test_adam_matches_torch(kw):
    run_parity(lambda ps: optim.Adam(ps, **kw), lambda ps: torch.optim.Adam(ps, **kw),
               f"Adam {kw}")


@pytest.mark.parametrize("kw", ADAM_CASES[:5], ids=str)
def test_adamw_matches_torch(kw):
    run_parity(lambda ps: optim.AdamW(ps, **kw), lambda ps: torch.optim.AdamW(ps, **kw),
               f"AdamW {kw}")


RMSPROP_CASES = [
    dict(),
    dict(lr=1e-3, alpha=0.9, eps=1e-6),
    dict(lr=1e-3, centered=True),
    dict(lr=1e-3, momentum=0.9),
    dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-2, maximize=True),
    dict(lr=1e-3, alpha=0.3, centered=True),  # 1 - alpha >= 0.5: lerp's other formula
]


@pytest.mark.parametrize("kw", RMSPROP_CASES, ids=str)
def test_rmsprop_matches_torch(kw):
    run_parity(lambda ps: optim.RMSprop(ps, **kw), lambda ps: torch.optim.RMSprop(ps, **kw),
               f"RMSprop {kw}")


def test_param_groups_and_missing_grads():
    init, grads = make_data(1, shapes=[(5,), (6,), (7,)])
    o_params, t_params = ours_params(init), torch_params(init)
    ours = optim.SGD([{"params": o_params[:2]}, {"params": o_params[2:], "lr": 0.5}], lr=0.1,
                     momentum=0.9)
    theirs = torch.optim.SGD([{"params": t_params[:2]}, {"params": t_params[2:], "lr": 0.5}],
                             lr=0.1, momentum=0.9)
    for s in range(3):
        # param 1 has no grad on odd steps: it is skipped, its buffer left alone.
        for p_o, p_t, g in zip(o_params, t_params, grads[s]):
            p_o.grad = cnncore.tensor(g)
            p_t.grad = torch.tensor(g)
        if s % 2:
            o_params[1].grad = None
            t_params[1].grad = None
        ours.step()
        theirs.step()
        compare_params(o_params, t_params, f"groups step {s}")
    assert ours.param_groups[1]["lr"] == 0.5 and ours.param_groups[0]["lr"] == 0.1


def test_update_is_in_place_and_model_sees_it():
    model = cnncore.nn.Linear(3, 2)
    storage_before = model.weight._c
    before = model.weight.detach().numpy().copy()
    opt = optim.SGD(model.parameters(), lr=0.5)
    model.weight.grad = cnncore.tensor(np.ones((2, 3), np.float32))
    opt.step()
    assert model.weight._c is storage_before
    check_close(model.weight, before - 0.5, what="weight after one SGD step")
    assert model.bias.grad is None  # no grad: not updated, no error


def test_zero_grad():
    p = Parameter(np.ones(3, np.float32))
    opt = optim.Adam([p])
    p.grad = cnncore.tensor(np.ones(3, np.float32))
    opt.zero_grad(set_to_none=False)
    check_close(p.grad, np.zeros(3, np.float32), what="zero_grad(set_to_none=False)")
    opt.zero_grad()
    assert p.grad is None


def test_closure_returns_loss():
    p = Parameter(np.ones(2, np.float32))
    opt = optim.SGD([p], lr=0.1)

    def closure():
        p.grad = cnncore.tensor(np.full(2, 2.0, np.float32))
        return 1.5

    assert opt.step(closure) == 1.5
    check_close(p, np.full(2, 0.8, np.float32), what="param after closure step")


@pytest.mark.parametrize("make", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, momentum=0.5, centered=True)),
], ids=lambda m: m[0])
def test_state_dict_round_trip_continues_identically(make):
    name, kw = make
    init, grads = make_data(2, shapes=[(9,), (2, 3)], steps=6)
    a_params = ours_params(init)
    a = getattr(optim, name)(a_params, **kw)
    t_params = torch_params(init)
    t = getattr(torch.optim, name)(t_params, **kw)
    for s in range(3):
        step_both(a, t, a_params, t_params, grads[s])
    sd, tsd = a.state_dict(), t.state_dict()
    # Same format as torch: keys of the groups, params as indices, state keys per index.
    assert [sorted(g) for g in sd["param_groups"]] == [sorted(g) for g in tsd["param_groups"]]
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    assert {k: sorted(v) for k, v in sd["state"].items()} == \
        {k: sorted(v) for k, v in tsd["state"].items()}
    # A fresh optimizer on copies of the parameters, loaded from the dict, continues identically.
    b_params = [Parameter(p.detach().numpy().copy()) for p in a_params]
    b = getattr(optim, name)(b_params, lr=123.0)
    b.load_state_dict(sd)
    assert b.param_groups[0]["lr"] == kw["lr"]
    for s in range(3, 6):
        for ps in (a_params, b_params):
            for p, g in zip(ps, grads[s]):
                p.grad = cnncore.tensor(g)
        a.step()
        b.step()
    for pa, pb in zip(a_params, b_params):
        np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())
    # The loaded state is a copy: stepping b did not touch the dict taken from a.
    # And a state_dict from torch loads too.
    c_params = [Parameter(p.detach().numpy().copy()) for p in t_params]
    c = getattr(optim, name)(c_params, **kw)
    c.load_state_dict(tsd)
    for s in range(3, 6):
        step_both(c, t, c_params, t_params, grads[s])
    compare_params(c_params, t_params, f"{name} loaded from torch's state_dict")


def test_load_state_dict_mismatch():
    opt = optim.SGD([Parameter(np.ones(2, np.float32))], lr=0.1)
    other = optim.SGD([Parameter(np.ones(2, np.float32)), Parameter(np.ones(2, np.float32))],
                      lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(other.state_dict())


BAD = [
    (optim.SGD, dict(lr=-1), "Invalid learning rate: -1"),
    (optim.SGD, dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (optim.SGD, dict(lr=0.1, weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
    (optim.SGD, dict(lr=0.1, nesterov=True), "Nesterov momentum requires"),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (optim.Adam, dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (optim.Adam, dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (optim.Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (optim.Adam, dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (optim.AdamW, dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    (optim.RMSprop, dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    (optim.RMSprop, dict(momentum=-1), "Invalid momentum value: -1"),
    (optim.RMSprop, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
]


@pytest.mark.parametrize("cls,kw,msg", BAD, ids=[f"{c.__name__}-{k}" for c, k, _ in BAD])
def test_bad_hyperparameters_raise_like_torch(cls, kw, msg):
    with pytest.raises(ValueError, match=msg) as ours:
        cls([Parameter(np.ones(2, np.float32))], **kw)
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, cls.__name__)([torch.nn.Parameter(torch.ones(2))], **kw)
    assert str(ours.value) == str(theirs.value)


def test_bad_params():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(Parameter(np.ones(2, np.float32)), lr=0.1)
    p = Parameter(np.ones(2, np.float32))
    with pytest.raises(ValueError, match="duplicate"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="must be a number"):
        optim.SGD([p], lr="0.1")


def test_kernel_errors_name_the_argument():
    p = _core.zeros([3])
    with pytest.raises(ValueError,
                       match=r"sgd_step: grad shape \(4,\) must match param shape \(3,\)"):
        _core.sgd_step(p, _core.zeros([4]), None, lr=0.1)
    with pytest.raises(ValueError, match="momentum_buffer"):
        _core.sgd_step(p, _core.zeros([3]), None, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="exp_avg_sq shape"):
        _core.adam_step(p, _core.zeros([3]), _core.zeros([3]), _core.zeros([2]), None, step=1)
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        _core.adam_step(p, _core.zeros([3]), _core.zeros([3]), _core.zeros([3]), None, step=1,
                        amsgrad=True)
    with pytest.raises(ValueError, match="grad_avg"):
        _core.rmsprop_step(p, _core.zeros([3]), _core.zeros([3]), None, None, centered=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        _core.sgd_step(p, _core.zeros([3]), None, lr=-1.0)
    with pytest.raises(TypeError):
        _core.sgd_step(_core.zeros([3], "int64"), _core.zeros([3]), None, lr=0.1)


def test_non_contiguous_grad_is_accepted():
    g = np.arange(12, dtype=np.float32).reshape(3, 4)
    p_o = Parameter(np.zeros((4, 3), np.float32))
    p_o.grad = cnncore.from_numpy(g.T)  # a transposed view
    optim.SGD([p_o], lr=1.0).step()
    check_close(p_o, -g.T, what="SGD with a transposed grad")


# ---- schedulers ----------------------------------------------------------------------------------
def lr_sequence(make_sched, opt_cls, opt_kw, steps, lib, metrics=None):
    params = ([Parameter(np.ones(2, np.float32))] if lib is optim
              else [torch.nn.Parameter(torch.ones(2))])
    group2 = ([Parameter(np.ones(1, np.float32))] if lib is optim
              else [torch.nn.Parameter(torch.ones(1))])
    opt = getattr(lib, opt_cls)([{"params": params}, {"params": group2, "lr": opt_kw["lr"] / 2}],
                                **opt_kw)
    sched = make_sched(lib.lr_scheduler, opt)
    seq = [list(sched.get_last_lr())]
    moms = []
    for i in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        seq.append(list(sched.get_last_lr()))
        g = opt.param_groups[0]
        moms.append(g.get("momentum", g.get("betas", (None,))[0]))
    return seq, moms, sorted(sched.state_dict())


SCHEDULERS = {
    "StepLR": (lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), "SGD", 20),
    "MultiStepLR": (lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3), "SGD", 12),
    "ExponentialLR": (lambda m, o: m.ExponentialLR(o, gamma=0.9), "SGD", 15),
    "CosineAnnealingLR": (lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=1e-3), "SGD", 30),
    "LinearLR": (lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=6), "SGD", 10),
    "ConstantLR": (lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=4), "SGD", 8),
    "OneCycleLR-cos": (lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=20), "SGD", 20),
    "OneCycleLR-linear-3phase": (lambda m, o: m.OneCycleLR(
        o, max_lr=0.4, epochs=3, steps_per_epoch=5, anneal_strategy="linear", three_phase=True),
        "SGD", 15),
    "OneCycleLR-adam": (lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=12, pct_start=0.25),
                        "Adam", 12),
    "LambdaLR": (lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e + 0.01 * e), "SGD", 10),
    "SequentialLR-warmup-cosine": (lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=4), m.CosineAnnealingLR(o, T_max=8)],
        milestones=[4]), "SGD", 14),
    "SequentialLR-three": (lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=2), m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=2)], milestones=[3, 6]), "SGD", 10),
    "ChainedScheduler": (lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.5, total_iters=3), m.ExponentialLR(o, gamma=0.9)]), "SGD", 8),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_lr_sequence_matches_torch(name):
    make, opt_cls, steps = SCHEDULERS[name]
    kw = dict(lr=0.1, momentum=0.9) if opt_cls == "SGD" else dict(lr=0.01)
    ours, our_moms, our_keys = lr_sequence(make, opt_cls, kw, steps, optim)
    theirs, their_moms, their_keys = lr_sequence(make, opt_cls, kw, steps, torch.optim)
    assert ours == theirs  # exact: the same float formulas in the same order
    assert our_moms == their_moms
    assert our_keys == their_keys  # state_dict: the same attributes


@pytest.mark.parametrize("kw", [dict(patience=2), dict(mode="max", factor=0.5, patience=1,
                                                       cooldown=2, threshold_mode="abs",
                                                       threshold=0.05, min_lr=0.02)], ids=str)
def test_reduce_on_plateau_matches_torch(kw):
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.5, 0.6, 0.61, 0.7, 0.7, 0.7, 0.7, 0.8, 0.8]
    make = lambda m, o: m.ReduceLROnPlateau(o, **kw)  # noqa: E731
    ours, _, our_keys = lr_sequence(make, "SGD", dict(lr=0.1), len(metrics), optim, metrics)
    theirs, _, their_keys = lr_sequence(make, "SGD", dict(lr=0.1), len(metrics), torch.optim,
                                        metrics)
    assert ours == theirs and our_keys == their_keys
    assert ours[-1] != ours[0]  # it did reduce


@pytest.mark.parametrize("name", sorted(set(SCHEDULERS) - {"LambdaLR", "SequentialLR-three"}))
@pytest.mark.parametrize("via_json", [False, True], ids=["dict", "json"])
def test_scheduler_state_dict_resume(name, via_json):
    make, _, steps = SCHEDULERS[name]

    def fresh():
        opt = optim.SGD([{"params": [Parameter(np.ones(2, np.float32))]},
                         {"params": [Parameter(np.ones(1, np.float32))], "lr": 0.05}],
                        lr=0.1, momentum=0.9)
        return opt, make(lr_scheduler, opt)

    opt_a, a = fresh()
    full = []
    for _ in range(steps):
        opt_a.step()
        a.step()
        full.append(a.get_last_lr())
    opt_b, b = fresh()
    half = steps // 2
    for _ in range(half):
        opt_b.step()
        b.step()
    sd_sched, sd_opt = b.state_dict(), opt_b.state_dict()
    assert "optimizer" not in sd_sched
    if via_json:  # what a checkpoint written as JSON gives back
        sd_sched = json.loads(json.dumps(sd_sched))
    opt_c, c = fresh()
    opt_c.load_state_dict(sd_opt)
    c.load_state_dict(sd_sched)
    resumed = []
    for _ in range(steps - half):
        opt_c.step()
        c.step()
        resumed.append(c.get_last_lr())
    assert resumed == full[half:]


def test_scheduler_errors_and_warnings():
    opt = optim.SGD([Parameter(np.ones(2, np.float32))], lr=0.1)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        lr_scheduler.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=2, cycle_momentum=False)
    for _ in range(2):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        opt.step()
        sched.step()
    opt2 = optim.SGD([Parameter(np.ones(2, np.float32))], lr=0.1)
    s2 = lr_scheduler.StepLR(opt2, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s2.step()
    assert math.isclose(s2.get_last_lr()[0], 0.1)


PER_ISA_CASES = (("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
                 ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=1e-2)),
                 ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True)))


@pytest.fixture
def restore_isa_and_threads():
    isa, threads = _core.active_isa(), cnncore.get_num_threads()
    yield
    _core.set_isa(isa)
    cnncore.set_num_threads(threads)


@pytest.mark.parametrize("isa", list(_core.available_isas()))
def test_every_isa_matches_torch(isa, restore_isa_and_threads):
    _core.set_isa(isa)
    assert _core.active_isa() == isa
    for name, kw in PER_ISA_CASES:
        run_parity(lambda ps: getattr(optim, name)(ps, **kw),
                   lambda ps: getattr(torch.optim, name)(ps, **kw), f"{name} on {isa}")


def test_threads_give_bitwise_identical_updates(restore_isa_and_threads):
    # Elementwise updates: however the range is chunked, every element gets the same math.
    init, grads = make_data(3, BIG_SHAPES, steps=3)
    results = []
    for threads in (1, 2):
        cnncore.set_num_threads(threads)
        runs = []
        for name, kw in PER_ISA_CASES:
            ps = ours_params(init)
            opt = getattr(optim, name)(ps, **kw)
            for g in grads:
                for p, gi in zip(ps, g):
                    p.grad = cnncore.tensor(gi)
                opt.step()
            runs.append([p.detach().numpy().copy() for p in ps])
        results.append(runs)
    for run1, run2 in zip(*results):
        for a, b in zip(run1, run2):
            np.testing.assert_array_equal(a, b)


def test_named_parameters_give_param_names_like_torch():
    model = cnncore.nn.Linear(3, 2)
    opt = optim.SGD(model.named_parameters(), lr=0.1, momentum=0.9)
    tmodel = torch.nn.Linear(3, 2)
    topt = torch.optim.SGD(tmodel.named_parameters(), lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    with pytest.raises(ValueError, match="with/without names"):
        optim.SGD([("w", Parameter(np.ones(2, np.float32))), Parameter(np.ones(2, np.float32))])


# ---- fast kernels vs their reference twins -------------------------------------------------------
REF_SIZES = [1, 7, 16, 17, 33, 1000, 40001]
KERNEL_CASES = [
    ("sgd_step", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01), 1),
    ("sgd_step", dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True), 1),
    ("sgd_step", dict(lr=0.1, weight_decay=0.01), 0),
    ("adam_step", dict(lr=1e-2, weight_decay=0.01, amsgrad=True), 3),
    ("adam_step", dict(lr=1e-2, beta1=0.3, weight_decay=0.1, decoupled_weight_decay=True,
                       maximize=True), 3),
    ("rmsprop_step", dict(lr=1e-2, momentum=0.5, centered=True, weight_decay=0.01), 3),
    ("rmsprop_step", dict(lr=1e-2, alpha=0.4, centered=True, maximize=True), 3),
]


def kernel_arrays(n, rng):
    """param, grad, then three state buffers starting at zero as in the optimizers."""
    return [rng.standard_normal(n).astype(np.float32) for _ in range(2)] + \
        [np.zeros(n, np.float32) for _ in range(3)]


def call_kernel(mod, fn, kw, arrays, step):
    t = [_core.from_numpy(a) for a in arrays]
    if fn == "sgd_step":
        mod.sgd_step(t[0], t[1], t[2] if kw.get("momentum") else None, first_step=step == 1, **kw)
    elif fn == "adam_step":
        mod.adam_step(t[0], t[1], t[2], t[3], t[4], step=step, **kw)
    else:
        mod.rmsprop_step(t[0], t[1], t[2], t[3], t[4], **kw)


@pytest.mark.parametrize("isa", list(_core.available_isas()))
@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: f"{c[0]}-{sorted(c[1])}")
def test_kernels_match_reference(case, isa, restore_isa_and_threads):
    fn, kw, _ = case
    _core.set_isa(isa)
    rng = np.random.default_rng(0)
    for n in REF_SIZES:
        ours = kernel_arrays(n, rng)
        ref = [a.copy() for a in ours]
        for step in (1, 2, 3, 4):
            grad = rng.standard_normal(n).astype(np.float32)
            ours[1][:] = grad
            ref[1][:] = grad
            call_kernel(_core, fn, kw, ours, step)
            call_kernel(_core.reference, fn, kw, ref, step)
        for i, (a, b) in enumerate(zip(ours, ref)):
            if isa == "baseline":  # same op order, no FMA: bit for bit
                np.testing.assert_array_equal(a, b, err_msg=f"{fn} n={n} array {i}")
            else:  # FMA contraction may round differently in the last bit
                scale = max(1.0, float(np.abs(b).max()))
                check_close(a, b, rtol=1e-5, atol=1e-6 * scale, what=f"{fn} n={n} array {i}")


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_optimizer_with_scheduler_matches_torch(name):
    # OneCycleLR changes lr and momentum / beta1 every step: the updates must follow.
    init, grads = make_data(4, shapes=[(5, 3), (17,)], steps=10)
    o_params, t_params = ours_params(init), torch_params(init)
    kw = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01)
    ours = getattr(optim, name)([{"params": o_params[:1]}, {"params": o_params[1:], "lr": 0.02}],
                                **kw)
    theirs = getattr(torch.optim, name)([{"params": t_params[:1]},
                                         {"params": t_params[1:], "lr": 0.02}], **kw)
    so = lr_scheduler.OneCycleLR(ours, max_lr=[0.1, 0.05], total_steps=10)
    st = torch.optim.lr_scheduler.OneCycleLR(theirs, max_lr=[0.1, 0.05], total_steps=10)
    for s in range(10):
        step_both(ours, theirs, o_params, t_params, grads[s])
        so.step()
        st.step()
        compare_params(o_params, t_params, f"{name} + OneCycleLR step {s + 1}")


def test_non_contiguous_and_blocked_parameters_are_updated():
    base = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    for make in (lambda c: c.to_blocked(8), lambda c: c.permute([0, 2, 3, 1])):
        p = Parameter(base.copy())
        p._c = make(p._c)
        layout = p._c.block
        p.grad = cnncore.tensor(np.ones(p.shape, np.float32))
        optim.SGD([p], lr=0.5).step()
        assert p._c.block == layout
        check_close(p, (base if layout else base.transpose(0, 2, 3, 1)) - 0.5,
                    what=f"SGD on a {'blocked' if layout else 'permuted'} parameter")
