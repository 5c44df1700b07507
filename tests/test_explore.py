"""The explorer draws exactly what sn.simulate returns for the config its controls stand for."""

import matplotlib
import numpy as np
import pytest

import signoise as sn
from signoise.explore import (
    MAX_POINTS,
    Explorer,
    config_of,
    gram_algorithms,
    phase_map,
    state_of,
)


@pytest.fixture(scope="module")
def explorer():
    matplotlib.use("Agg")
    cfg = sn.RunConfig.from_dict({"seed": 1, "data": {"n": 8, "d": 200, "mu_norm": 12.0, "n_test": 50},
                                  "model": {"m": 4}, "train": {"lr": 0.01, "steps": 60, "record_every": 5}})
    ex = Explorer(cfg, phase=False)
    yield ex
    import matplotlib.pyplot as plt
    plt.close(ex.fig)


def _assert_drawn(ex, ds):
    x, y = ex.lines["gamma+"].get_data()
    np.testing.assert_array_equal(x, ds["step"].values)
    np.testing.assert_array_equal(y, ds["gamma_max"].sel(j=1).values)
    np.testing.assert_array_equal(ex.lines["gamma-"].get_data()[1], ds["gamma_max"].sel(j=-1).values)
    np.testing.assert_array_equal(ex.lines["rho"].get_data()[1], ds["rho_bar_max"].values)
    np.testing.assert_array_equal(ex.lines["train"].get_data()[1], ds["train_error"].values)
    np.testing.assert_array_equal(ex.lines["test"].get_data()[1], ds["test_error"].values)
    np.testing.assert_array_equal(ex.lines["path"].get_data()[0], ds["rho_bar_max"].values)


def test_slider_change_draws_simulate(explorer):
    explorer.sliders["mu_norm"].set_val(20.0)           # as a user's drag would
    explorer.sliders["n"].set_val(10)
    cfg = explorer.cfg
    assert (cfg.data.mu, cfg.data.n, cfg.seed) == (20.0, 10, 1)
    _assert_drawn(explorer, sn.simulate(cfg, engine="gram", quiet=True))


def test_algorithm_and_parameter(explorer):
    explorer.set(algorithm="sam", param=0.05)
    assert explorer.cfg.algorithm.name == "sam"
    assert explorer.cfg.algorithm.params["rho"] == 0.05
    assert explorer.sliders["param"].label.get_text() == "rho"
    _assert_drawn(explorer, sn.simulate(explorer.cfg, quiet=True))
    explorer.selector.set_active(gram_algorithms().index("pegr"))   # the radio-button click
    assert explorer.cfg.algorithm.name == "pegr"
    _assert_drawn(explorer, sn.simulate(explorer.cfg, quiet=True))


def test_large_d_switches_to_wishart(explorer):
    explorer.set(log10_d=6.0, algorithm="gd")
    assert explorer.cfg.data.d == 10 ** 6 and explorer.cfg.data.sampler == "wishart"
    _assert_drawn(explorer, sn.simulate(explorer.cfg, quiet=True))
    explorer.set(log10_d=np.log10(300))
    assert explorer.cfg.data.sampler == "explicit"


def test_state_round_trip():
    cfg = sn.RunConfig.from_dict({"data": {"n": 8, "d": 200, "mu_norm": 5.0},
                                  "algorithm": {"name": "gr", "lam": 0.3}})
    assert config_of(cfg, state_of(cfg)) == cfg


def test_gram_algorithms_exclude_out_of_span():
    names = gram_algorithms()
    assert "gd" in names and "pegr" in names
    assert "pgd" not in names and "grad_noise" not in names


def test_phase_map_matches_simulate():
    cfg = sn.RunConfig.from_dict({"data": {"n": 4, "d": 100, "mu_norm": 5.0, "n_test": 30},
                                  "model": {"m": 2}, "train": {"lr": 0.02, "steps": 20, "record_every": 10}})
    _, _, error, const = phase_map(cfg, ns=(4, 6), snrs=(0.1, 1.0))
    assert error.shape == (2, 2) and const > 0
    one = sn.simulate(cfg.updated({"data.n": 6, "data.snr": 1.0}), quiet=True)
    assert error[1, 1] == float(one["test_error"][-1])


def test_blitted_changes_equal_a_full_draw(explorer):
    """Blitting redraws no whole figure, yet leaves the canvas pixel for pixel as a full draw."""
    canvas = explorer.fig.canvas
    assert explorer.blitter.live                      # Agg can blit
    canvas.draw()
    full_draws = []
    cid = canvas.mpl_connect("draw_event", full_draws.append)
    try:
        explorer.set(mu_norm=35.0)                       # panels rescale: their ticks redrawn
        explorer.sliders["log10_lr"].set_val(-1.5)       # a slider moves
        explorer.selector.set_active(gram_algorithms().index("sam"))   # radio and param slider
        explorer.set(n=12, steps=80, seed=3)
    finally:
        canvas.mpl_disconnect(cid)
    assert full_draws == []
    blitted = np.asarray(canvas.buffer_rgba()).copy()
    canvas.draw()
    np.testing.assert_array_equal(blitted, np.asarray(canvas.buffer_rgba()))
    _assert_drawn(explorer, sn.simulate(explorer.cfg, quiet=True))


def test_views_hold_their_data(explorer):
    """rescale keeps a panel's view while it holds the data, and moves it when it does not."""
    for mu in (3.0, 40.0, 6.0):
        explorer.set(mu_norm=mu)
        for k in ("race", "trajectory"):
            ax = explorer.axes[k]
            (x0, y0), (x1, y1) = ax.dataLim.get_points()
            assert ax.viewLim.x0 <= x0 and x1 <= ax.viewLim.x1
            assert ax.viewLim.y0 <= y0 and y1 <= ax.viewLim.y1
            assert (y1 - y0) >= 0.4 * (ax.viewLim.y1 - ax.viewLim.y0)


def test_record_every_keeps_at_most_max_points(explorer):
    explorer.set(steps=2000)
    assert explorer.cfg.train.record_every == 14         # ceil(2000 / 150); the base's is 5
    assert explorer.ds.sizes["step"] == 144 <= MAX_POINTS + 1
    _assert_drawn(explorer, sn.simulate(explorer.cfg, quiet=True))
    explorer.set(steps=60)
    assert explorer.cfg.train.record_every == 5


IPYMPL_CELLS = ['%matplotlib widget', '''
import matplotlib, numpy as np, signoise as sn
from signoise.explore import Explorer
cfg = sn.RunConfig.from_dict({"seed": 1, "data": {"n": 8, "d": 200, "mu_norm": 12.0, "n_test": 50},
                              "model": {"m": 4}, "train": {"lr": 0.01, "steps": 60, "record_every": 5}})
ex = Explorer(cfg, phase=False)
assert type(ex.fig.canvas).__module__.startswith("ipympl"), type(ex.fig.canvas)
assert not ex.blitter.live          # ipympl cannot blit: each change is a draw_idle
ex.sliders["mu_norm"].set_val(20.0)
ex.selector.set_active(2)
ds = sn.simulate(ex.cfg, quiet=True)
assert (ex.cfg.data.mu, ex.cfg.algorithm.name) == (20.0, "msgd")
np.testing.assert_array_equal(ex.lines["gamma+"].get_data()[1], ds["gamma_max"].sel(j=1).values)
np.testing.assert_array_equal(ex.lines["test"].get_data()[1], ds["test_error"].values)
ex.fig.canvas.draw()                # renders the whole figure, data included
print("ipympl ok")
''']


def test_explorer_under_ipympl_in_a_kernel(tmp_path):
    """`%matplotlib widget` in a real kernel: the explorer builds on ipympl's canvas, its
    widgets drive it, and it draws what sn.simulate returns (no browser: the frontend half of
    ipympl is not exercised)."""
    import importlib.util

    # the test extra installs ipympl: a missing one fails. Not imported here: importing ipympl
    # switches this process's matplotlib backend to ipympl's
    assert importlib.util.find_spec("ipympl") is not None
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in IPYMPL_CELLS])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "ipympl ok" in out
