"""Vote-counting model of direction-only results (retrosim.meta.votes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from retrosim.meta import claims as cl
from retrosim.meta import votes


@pytest.mark.parametrize(
    ("df", "nc", "a", "b"),
    [(6, 0.5, 2.447, np.inf), (18, 2.0, -2.1, 2.1), (41, 4.0, 3.55, np.inf), (9, -1.0, 0, 2.26)],
)
def test_region_probability_is_the_noncentral_t(df, nc, a, b):
    exact = stats.nct.cdf(b, df, nc) - stats.nct.cdf(a, df, nc)
    got = np.exp(votes.region_logprob(a, b, df, nc))
    assert got == pytest.approx(exact, rel=1e-4)


def test_exact_p_uses_the_noncentral_t_density():
    assert np.exp(votes.region_logprob(2.5, 2.5, 9, 1.0, point=True)) == pytest.approx(
        stats.nct.pdf(2.5, 9, 1.0), rel=1e-6
    )


def test_heterogeneity_widens_the_statistic_by_hand():
    # T = (sc Z + nc) / S, S = sqrt(V / df): P(T > c) = E_V[1 - Phi((c S - nc) / sc)],
    # integrated here over the chi-square density with scipy's adaptive quadrature
    from scipy import integrate

    df, h, tau, delta, c = 10, 11, 0.3, 0.8, 2.0
    nc, sc = delta * np.sqrt(h), np.sqrt(1 + h * tau**2)
    exact = integrate.quad(
        lambda v: stats.norm.sf((c * np.sqrt(v / df) - nc) / sc) * stats.chi2.pdf(v, df),
        0,
        np.inf,
    )[0]
    assert np.exp(votes.region_logprob(c, np.inf, df, nc, sc)) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("design_name", ["emg", "training"])
def test_simulated_classes_follow_the_likelihood(design_name):
    # SBC needs the simulator and the likelihood to describe the same statistic: the share of
    # simulated "higher", "no difference" and "lower" classes of every row of the design, with
    # a row effect drawn around its cell (tau_study > 0), must match the model's region
    # probabilities within Monte Carlo error.
    design = votes.emg_design() if design_name == "emg" else votes.training_design()
    rng = np.random.default_rng(11)
    params = votes.draw_prior(design, None, rng)
    params["tau_study"] = 0.4
    n_sim = 40_000
    c = stats.t.ppf(0.975, design.df)
    import dataclasses

    tiled = dataclasses.replace(
        design, cell=np.tile(design.cell, n_sim), h=np.tile(design.h, n_sim),
        df=np.tile(design.df, n_sim),
    )  # fmt: skip
    t = votes.simulate_t(tiled, params, rng).reshape(n_sim, design.n_rows)
    nc = params["delta"][design.cell] * np.sqrt(design.h)
    sc = np.sqrt(1 + design.h * params["tau_study"] ** 2)
    for i in range(design.n_rows):
        up = np.exp(votes.region_logprob(c[i], votes.T_BIG, design.df[i], nc[i], sc[i]))
        down = np.exp(votes.region_logprob(c[i], votes.T_BIG, design.df[i], -nc[i], sc[i]))
        for share, p in ((np.mean(t[:, i] > c[i]), up), (np.mean(t[:, i] < -c[i]), down)):
            se = np.sqrt(p * (1 - p) / n_sim)
            assert abs(share - p) < 4.5 * se + 1e-4, (design.cells[design.cell[i]], share, p)


def test_emg_design_leaves_out_rows_without_n_and_underwater():
    d = votes.emg_design()
    ex = dict(zip(d.excluded["row_id"], d.excluded["reason"], strict=True))
    assert ex["zhang_tr_bw_emg_soleus"] == "sample size not reported"
    assert "underwater" in ex["masumoto2007_emg_vastus_medialis"]
    row = d.rows.index[d.rows["row_id"] == "detweiler2007_emg_rectus_femoris"][0]
    # "backward > forward, dependent t-test p < 0.05", n = 19: T > t_{18, 0.975}
    assert (d.sign[row], d.b[row]) == (1.0, votes.T_BIG)
    assert d.a[row] == pytest.approx(stats.t.ppf(0.975, 18))
    gastroc = d.rows.index[d.rows["row_id"] == "detweiler2007_emg_medial_gastrocnemius"][0]
    assert d.sign[gastroc] == -1.0  # lower backward: the region is of -T


def test_training_design_uses_between_group_results_once_per_study():
    d = votes.training_design()
    r = d.rows.set_index("row_id")
    # Negra 2022: 20 vs 16, p <= 0.05: h = 20*16/36, df = 34, T > t_{34, 0.975}
    assert r.loc["negra2022_linear", "h"] == pytest.approx(20 * 16 / 36)
    assert r.loc["negra2022_linear", "df"] == 34
    i = list(r.index).index("negra2022_linear")
    assert d.a[i] == pytest.approx(stats.t.ppf(0.975, 34))
    assert "negra2022_jumping" not in r.index  # one vote per study and outcome class
    ex = dict(zip(d.excluded["row_id"], d.excluded["reason"], strict=True))
    assert "training group only" in ex["ordway2016_fw_running_economy"]
    assert ex["hao2011_balance_wk8"] == "group sizes not reported"


def test_model_log_density_equals_the_hand_computed_likelihood():
    d = votes.emg_design()
    model = votes.build_model(d)
    point = model.initial_point()
    rng = np.random.default_rng(4)
    point["mu"] = np.array([0.4])
    point["z"] = rng.normal(size=len(d.cells))
    tau_c, tau_s = 0.3, 0.2
    point["tau_cell_log__"] = np.log(tau_c)
    point["tau_study_log__"] = np.log(tau_s)
    loglik = model.compile_logp(vars=model.potentials, jacobian=False)(point)
    delta = 0.4 + tau_c * point["z"]
    hand = 0.0
    for i in range(d.n_rows):
        nc = d.sign[i] * delta[d.cell[i]] * np.sqrt(d.h[i])
        sc = np.sqrt(1 + d.h[i] * tau_s**2)
        b = np.inf if d.b[i] >= votes.T_BIG else d.b[i]
        hand += votes.region_logprob(d.a[i], b, d.df[i], nc, sc, point=bool(d.point[i]))
    assert float(loglik) == pytest.approx(hand, rel=1e-6)


def test_votes_recover_a_known_effect():
    # 40 studies of n = 15 with delta = 0.5: the grid posterior of the likelihood recovers it
    rng = np.random.default_rng(11)
    d0 = votes.training_design()
    n = 40
    d = votes.VoteDesign(
        family="sim", cells=["x"], cell_group=np.zeros(1, int), groups=["g"],
        cell=np.zeros(n, int), h=np.full(n, 15.0), df=np.full(n, 14.0), sign=np.ones(n),
        a=np.zeros(n), b=np.zeros(n), point=np.zeros(n, bool), rows=d0.rows.iloc[:0],
    )  # fmt: skip
    truth = {"delta": np.array([0.5]), "tau_study": 0.0}
    sign, a, b = votes.simulate_regions(d, votes.simulate_t(d, truth, rng))
    grid = np.linspace(-1, 2, 301)
    ll = [
        sum(
            votes.region_logprob(a[i], np.inf if b[i] >= votes.T_BIG else b[i], 14, s * g * 15**0.5)
            for i, s in enumerate(sign)
        )
        for g in grid
    ]
    post = np.exp(np.array(ll) - max(ll))
    post /= post.sum()
    mean = float((grid * post).sum())
    sd = float(np.sqrt(((grid - mean) ** 2 * post).sum()))
    assert abs(mean - 0.5) < 2.5 * sd and sd < 0.2


def test_every_vote_claim_cites_its_articles_and_sources_map_to_the_registry():
    cs = cl.article_sources()  # raises on an unknown registry key
    keys = {c.key for c in cl.CLAIMS} | {c.key for c in cl.VOTE_CLAIMS}
    mapped = set(cs["registry_claim"]) - {""}
    assert mapped <= keys
    for c in cl.VOTE_CLAIMS:
        assert cl.article_citation(c.key), c.key
    c1 = cl.article_sources("muscle_focus_c1")
    assert {"000", "001", "002"} <= set(c1["article_file"].str[:3])


def test_verdict_words_follow_the_stated_thresholds():
    assert votes._word(0.99, 2) == "supported"
    assert votes._word(0.99, 1) == "plausible"
    assert votes._word(0.8, 3) == "plausible"
    assert votes._word(0.5, 3) == "inconclusive"
    assert votes._word(0.2, 3) == "not supported"
    assert votes._word(0.01, 3) == "contradicted"


def test_claims_without_data_are_not_testable():
    hb = pd.DataFrame(
        {"study_key": ["heath2001"], "session": ["baseline"], "n": [8]}
    )  # fmt: skip
    out = votes.claim_verdicts(None, None, habituation=hb)
    assert (out["verdict"] == cl.NOT_TESTABLE).all()
    lp = out[out["claim"] == "learning_phase_2_3_weeks"].iloc[0]
    assert "neither confirmed nor excluded" in lp["verdict_basis"]
    assert "articles" not in lp["article_sources"] and "003_" in lp["article_sources"]


@pytest.mark.parametrize("design_name", ["emg", "training"])
def test_vectorised_likelihood_equals_the_row_by_row_sum(design_name):
    # log_likelihood_draws (the importance-sampling reference) against the scalar
    # region_logprob (itself checked against scipy's noncentral t above), row by row, for
    # the shipped statements including the exact-p rows
    design = votes.emg_design() if design_name == "emg" else votes.training_design()
    rng = np.random.default_rng(5)
    draws = [votes.draw_prior(design, None, rng) for _ in range(3)]
    got = votes.log_likelihood_draws(
        design,
        {"delta": np.stack([d["delta"] for d in draws]),
         "tau_study": np.array([d["tau_study"] for d in draws])},
    )  # fmt: skip
    for k, d in enumerate(draws):
        want = 0.0
        for i in range(design.n_rows):
            nc = design.sign[i] * d["delta"][design.cell[i]] * np.sqrt(design.h[i])
            sc = np.sqrt(1 + design.h[i] * d["tau_study"] ** 2)
            a, b = design.a[i], design.b[i]
            want += votes.region_logprob(a, b, design.df[i], nc, sc, point=bool(design.point[i]))
        assert got[k] == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_reference_posterior_follows_the_statements():
    # every row of the EMG design reports "significantly higher backward": the importance-
    # sampled posterior puts the group mean above zero and is still well sampled
    base = votes.sbc_base(votes.emg_design())
    c = stats.t.ppf(0.975, base.df)
    up = base.with_regions(np.ones(base.n_rows), c, np.full(base.n_rows, votes.T_BIG))
    ref = votes.reference_posterior(up, n_draws=20_000, seed=3)
    assert ref["weights"].sum() == pytest.approx(1.0)
    assert np.sum(ref["weights"] * (ref["mu"][:, 0] > 0)) > 0.99
    assert ref["ess"] > 200
    # no statement at all: the weights are flat and the reference is the prior
    flat = base.with_regions(np.ones(base.n_rows), np.full(base.n_rows, -votes.T_BIG),
                             np.full(base.n_rows, votes.T_BIG))  # fmt: skip
    ref0 = votes.reference_posterior(flat, n_draws=5000, seed=3)
    assert ref0["ess"] == pytest.approx(5000, rel=1e-6)
