"""The optimised chain gives the results of the straightforward implementation (rtol 1e-12).

The reference below is the implementation of :func:`retrosim.models.chain.evaluate` and of the
``RetroChain.run`` Dataset assembly as they were before the throughput work (commit 7729f7f /
a706ce2), kept frozen here on purpose: each model evaluated per mode at 1 kg, scaled by body
mass per mode, concatenated, and every variable added to the Dataset one at a time. Only the
backward factor follows the model since (paired direction effects, issue 14): it is taken from
the public :func:`retrosim.models.energetics.running_direction_ratio` / ``volume_term`` and the knee
inputs from ``knee.sample_parameters(..., effects=params)``. The optimised code must give the
same variables, the same dimensions and the same values (NaN where the reference has NaN) on
small random grids, with and without the knee model.
"""

import numpy as np
import pytest

from retrosim.models import _kernels, knee
from retrosim.models import energetics as en
from retrosim.models import gait as ga
from retrosim.models.chain import DIMS, MODE_MODELS, RetroChain, _axis, evaluate
from retrosim.units import G

RTOL = 1e-12
_GAIT_MASS = ("vgrf_peak_n", "vertical_stiffness_n_m", "leg_stiffness_n_m")


def _reference_evaluate(speed_m_s, mass_kg, direction, mode, grade, params, *,
                        models=en.MODELS, rer=en.DEFAULT_RER, leg_length_m=None):  # fmt: skip
    """Frozen straightforward implementation (per-mode model calls, scale, concatenate)."""
    params = {**en.direction_params_nominal(), **params}
    p = {k: (_axis(v, "draw") if np.ndim(v) == 1 else v) for k, v in params.items()}
    v = _axis(np.asarray(speed_m_s, float), "speed")
    m = _axis(np.asarray(mass_kg, float), "mass")
    i = _axis(np.asarray(grade, float), "grade")
    dirs = _axis(np.asarray(direction), "direction")
    back = dirs == "backward"
    leg = p["leg_length_default_m"] if leg_length_m is None else leg_length_m
    gait_parts, energy_parts = [], []
    for md in mode:
        if md == "run":
            g = ga.spring_mass_running(v, 1.0, leg, dirs, params=p, _check=False)
            ratio = np.where(back, en.running_direction_ratio(v, p), 1.0)
            possible = np.ones_like(v, dtype=bool)
        else:
            g = ga.inverted_pendulum_walking(v, 1.0, leg, dirs, params=p, _check=False)
            ratio = np.where(back, en.walking_direction_ratio(v, p), 1.0)
            possible = v**2 <= G * leg
        g = {k: (np.asarray(val) * m if k in _GAIT_MASS else np.asarray(val)) for k, val in
             g.items()}  # fmt: skip
        gait_parts.append(g)
        per_model = []
        for model in models:
            if model not in MODE_MODELS[md]:
                per_model.append(None)
                continue
            if model == "kram_taylor":
                vol = np.where(back, np.exp(en.volume_term(v) * p["dir_muscle_volume"]), 1.0)
                net = en.kram_taylor(g["contact_time_s"], v, volume_ratio=vol,
                                     coefficient_m=en.kram_taylor_coefficient(rer), params=p)  # fmt: skip
                net = np.where(i == 0.0, net, np.nan)
            else:
                net = en.forward_net_rate(model, v, md, i, params=p, rer=rer) * ratio
            per_model.append(np.where(possible, net, np.nan))
        energy_parts.append(per_model)
    mode_axis = DIMS.index("mode")
    gait_out = {}
    for key in ga.GAIT_OUTPUTS:
        arrs = [np.asarray(g[key], float) for g in gait_parts]
        shape = np.broadcast_shapes(*(a.shape for a in arrs))
        gait_out[key] = np.concatenate([np.broadcast_to(a, shape) for a in arrs], axis=mode_axis)
    nets = []
    for per_model in energy_parts:
        known = [a for a in per_model if a is not None]
        shape = np.broadcast_shapes(*(a.shape for a in known))
        nets.append([np.broadcast_to(a, shape) if a is not None else np.full(shape, np.nan)
                     for a in per_model])  # fmt: skip
    shape = np.broadcast_shapes(*(a.shape for row in nets for a in row))
    net = np.stack([np.concatenate([np.broadcast_to(row[k], shape) for row in nets],
                                   axis=mode_axis) for k in range(len(models))])  # fmt: skip
    return gait_out, en.energy_outputs(net, v[None], m[None], rer)


@pytest.fixture(params=["serial", "threads"])
def kernels(request, monkeypatch):
    """Run a test with the serial numpy path and with the threaded path forced on."""
    if request.param == "serial":
        _kernels.set_threads(1)
    else:
        _kernels.set_threads(2)
        monkeypatch.setattr(_kernels, "MIN_PARALLEL_SIZE", 0)  # small grids split too
    yield request.param
    _kernels.set_threads(None)


def _kept_dims(arr, dims, sizes, broadcast):
    """Dimensions the reference assembly gave a variable (length-1 axes dropped)."""
    if broadcast:
        return tuple(dims)
    return tuple(d for k, d in enumerate(dims) if arr.shape[k] == sizes[d])


def _reference_variables(chain, speed, mass, direction, mode, grade, params, seed, broadcast):
    """name -> (dims, values) as the reference run() assembled them."""
    gait_out, energy_out = _reference_evaluate(
        speed, mass, direction, mode, grade, params, models=chain.models, rer=chain.rer,
        leg_length_m=chain.leg_length_m,
    )  # fmt: skip
    n_draws = max(np.size(v) for v in params.values() if np.ndim(v) == 1)
    sizes = {"speed": len(speed), "mass": len(mass), "direction": len(direction),
             "mode": len(mode), "grade": len(grade), "draw": n_draws,
             "model": len(chain.models)}  # fmt: skip
    items = [(n, a, DIMS) for n, a in gait_out.items()]
    items += [(n, a, ("model", *DIMS)) for n, a in energy_out.items()]
    if chain.knee:
        effects = {k: params[k] for k in knee.DIRECTION_EFFECTS}
        kparams = knee.sample_parameters(n_draws, np.random.default_rng(seed), effects=effects)
        out = knee.from_gait(
            gait_out, mass_kg=_axis(mass, "mass"),
            direction=_axis(np.asarray(direction), "direction"),
            mode=_axis(np.asarray(mode), "mode"), speed_m_s=_axis(speed, "speed"),
            params=kparams,
        )  # fmt: skip
        for name, (arr, _, _) in out.items():
            arr = np.asarray(arr)
            items.append((name, arr.reshape((1,) * (len(DIMS) - arr.ndim) + arr.shape), DIMS))
    ref = {}
    for name, arr, dims in items:
        arr = np.asarray(arr)
        kept = _kept_dims(arr, dims, sizes, broadcast)
        full = np.broadcast_to(arr, tuple(sizes[d] for d in dims)) if broadcast else arr
        ref[name] = (kept, np.asarray(full).reshape([sizes[d] for d in kept]))
    return ref


def _grid(rng, walk_ok):
    hi = 2.2 if walk_ok else 4.8  # above sqrt(g L) walking is NaN
    speed = np.sort(rng.uniform(1.0, hi, 3))
    mass = np.sort(rng.uniform(45.0, 120.0, 2))
    grade = np.array([0.0, round(float(rng.uniform(0.01, 0.1)), 3)])
    return speed, mass, grade


CASES = [
    # (knee, mode, models, broadcast, walk_ok)
    (True, ("run", "walk"), en.MODELS, False, False),
    (False, ("run", "walk"), en.MODELS, False, False),
    (True, ("run",), en.MODELS, False, False),
    (True, ("walk",), en.MODELS, False, True),
    (False, ("walk", "run"), ("acsm", "kram_taylor"), False, True),
    (True, ("run", "walk"), ("margaria", "minetti_2002"), True, False),
]


@pytest.mark.parametrize(("with_knee", "mode", "models", "broadcast", "walk_ok"), CASES)
def test_run_matches_reference(with_knee, mode, models, broadcast, walk_ok, kernels):
    rng = np.random.default_rng(20261121 + len(mode) + len(models) + with_knee)
    speed, mass, grade = _grid(rng, walk_ok)
    chain = RetroChain(models, knee=with_knee)
    params = chain.parameters(7, rng)
    direction = ("backward", "forward") if broadcast else ("forward", "backward")
    ds = chain.run(speed, mass, direction, mode, grade, params=params, seed=3,
                   broadcast=broadcast)  # fmt: skip
    ref = _reference_variables(chain, speed, mass, direction, mode, grade, params, 3, broadcast)
    assert list(ds.data_vars) == list(ref)
    n_knee = sum(1 for v in ds.data_vars.values() if v.attrs.get("source"))
    assert (n_knee > 0) == with_knee
    for name, (dims, values) in ref.items():
        var = ds[name]
        assert var.dims == dims, name
        assert var.dtype == values.dtype, name
        assert var.attrs["units"] and var.attrs["long_name"], name
        if values.dtype == bool:
            np.testing.assert_array_equal(var.values, values, err_msg=name)
        else:
            np.testing.assert_allclose(var.values, values, rtol=RTOL, atol=0, err_msg=name)
    # walking above Froude 1 is NaN in both; the grid with fast speeds must contain some NaN
    if "walk" in mode and not walk_ok:
        assert np.isnan(ds["gross_kcal_km"].sel(mode="walk")).any()


@pytest.mark.parametrize("mode", [("run", "walk"), ("walk",), ("run",)])
def test_evaluate_matches_reference(mode, kernels):
    rng = np.random.default_rng(7)
    speed, mass, grade = _grid(rng, walk_ok=mode == ("walk",))
    params = RetroChain().parameters(5, rng)
    args = (speed, mass, ("forward", "backward"), mode, grade, params)
    gait_out, energy_out = evaluate(*args, leg_length_m=0.95)
    ref_gait, ref_energy = _reference_evaluate(*args, leg_length_m=0.95)
    for got, want in ((gait_out, ref_gait), (energy_out, ref_energy)):
        assert list(got) == list(want)
        for name in want:
            assert got[name].shape == want[name].shape, name
            np.testing.assert_allclose(got[name], want[name], rtol=RTOL, atol=0, err_msg=name)


def test_evaluate_agrees_with_plain_functions():
    """Independent anchor: evaluate equals the public model functions at one condition."""
    rng = np.random.default_rng(11)
    speed, mass, grade = _grid(rng, walk_ok=True)
    params = RetroChain().parameters(3, rng)
    gait_out, energy_out = evaluate(speed, mass, ("forward", "backward"), ("run", "walk"),
                                    grade, params)  # fmt: skip
    k, (a, b, d, g) = 2, (1, 0, 1, 1)  # one draw, one cell, backward, walking, graded
    p = {key: (val[k] if np.ndim(val) == 1 else val) for key, val in params.items()}
    out = en.metabolic_rate("acsm", speed[a], mass[b], "backward", "walk", grade[g], params=p)
    cell = energy_out["gross_kcal_km"][en.MODELS.index("acsm"), a, b, d, 1, g, k]
    assert cell == pytest.approx(float(out["gross_kcal_km"]), rel=1e-10)
    w = ga.inverted_pendulum_walking(speed[a], mass[b], None, "backward", params=p)
    assert gait_out["vgrf_peak_n"][a, b, d, 1, 0, k] == pytest.approx(float(w["vgrf_peak_n"]),
                                                                      rel=1e-10)  # fmt: skip


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((5, 17, 1, 2, 1), (1, 1, 7, 1, 1)), ((3, 1), (1, 9)), ((1, 1, 40), (2, 3, 1)), ((7,), ())],
)
@pytest.mark.parametrize("ufunc", [np.multiply, np.true_divide])
def test_kernels_binary_is_bitwise_the_ufunc(shape_a, shape_b, ufunc, monkeypatch):
    rng = np.random.default_rng(5)
    a = rng.lognormal(size=shape_a)
    b = rng.lognormal(size=shape_b)
    a.flat[0] = np.nan
    monkeypatch.setattr(_kernels, "MIN_PARALLEL_SIZE", 0)
    try:
        _kernels.set_threads(3)
        got = _kernels.binary(ufunc, a, b)
    finally:
        _kernels.set_threads(None)
    want = ufunc(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # exact, NaN in the same places
