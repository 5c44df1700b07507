"""Property-based: any config that validation accepts runs to a final status without an
exception; any rejected one names its key; the CLI shows no traceback for a bad --set."""

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import signoise as sn  # noqa: E402
from signoise.cli import main  # noqa: E402

from .conftest import make_cfg  # noqa: E402

NUM = st.one_of(st.integers(-3, 60), st.floats(-2.0, 1e7), st.just(float("nan")), st.none(),
                st.text(max_size=3))
KEYS = {"data.n": NUM, "data.d": NUM, "data.mu_norm": NUM, "data.sigma_p": NUM,
        "data.flip": NUM, "data.n_test": NUM, "model.m": NUM, "model.q": NUM,
        "model.sigma0": NUM, "train.lr": NUM, "train.steps": NUM, "train.record_every": NUM}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(sorted(KEYS)), NUM, max_size=3))
def test_accepted_configs_run_and_rejected_ones_name_the_key(changes):
    base = make_cfg(data__n=6, data__d=30, data__n_test=20, train__steps=6,
                    train__record_every=2)
    try:
        cfg = base.updated(changes)
    except (sn.ConfigError, TypeError) as exc:  # type errors: ConfigTypeError (kernel)
        assert any(key in str(exc) for key in changes), str(exc)
        return
    if cfg.data.d * max(cfg.data.n + cfg.data.n_test, 1) > 10 ** 6 or cfg.train.steps > 200:
        return  # keep the property test small: size limits are the guard's business
    ds = sn.simulate(cfg, quiet=True)
    assert ds.attrs["status"] in {"finished", "converged", "diverged"}


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(KEYS)), st.text(min_size=1, max_size=4))
def test_cli_bad_set_is_one_line(tmp_path_factory, key, text):
    folder = tmp_path_factory.mktemp("c")
    path = folder / "c.toml"
    sn.dump_config(make_cfg(data__n=6, train__steps=6, train__record_every=2), path)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(["run", str(path), "-o", str(folder / "r.nc"), "-q", "--overwrite",
                           "--set", f"{key}={text}"])
        except SystemExit as exc:  # argparse
            status = exc.code
    assert status in (0, 2), status
    assert "Traceback" not in err.getvalue()
