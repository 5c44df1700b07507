"""Sampling problems: the signal-noise patch data and the initial weights (SPEC §1–2).

Randomness follows DESIGN.md principle 4: each purpose has its own ``SeedSequence`` child of
the run's seed, so the training data depend only on (seed, data spec), the initial weights
only on (seed, model spec), the test set has its own stream, and algorithm noise never moves
any of them. Two algorithms run with the same seed see the same data and initial weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constraints import reject

#: Spawn keys of the independent random streams of one run.
STREAM_DATA, STREAM_TEST, STREAM_INIT, STREAM_ALGO, STREAM_READOUT = 0, 1, 2, 3, 4


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """The generator of one purpose (``STREAM_*``) of run ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream,))))


@dataclass
class Problem:
    """Explicit data and initial weights of one run (DESIGN.md contract).

    Attributes: ``mu (d,)``; ``xi (n, d)`` noise patches; ``y (n,)`` observed and ``y_true
    (n,)`` true labels in {−1, +1}; ``w0 (2, m, d)`` initial filters (index 0 is j = +1);
    ``xi_test``, ``y_test``, ``y_true_test`` the test set; ``b0 (2, m)`` initial biases
    (used only by models with a bias; zeros if not given). The signal patch of example i is
    ``y_true[i] * mu``.
    """

    mu: np.ndarray
    xi: np.ndarray
    y: np.ndarray
    y_true: np.ndarray
    w0: np.ndarray
    xi_test: np.ndarray
    y_test: np.ndarray
    y_true_test: np.ndarray
    b0: np.ndarray | None = None

    def __post_init__(self):
        self.validate()

    @classmethod
    def trusted(cls, **arrays) -> "Problem":
        """A Problem from arrays a sampler of this package made: float64, contiguous, finite,
        of matching shapes, so :meth:`validate` is skipped (it costs more than the draw)."""
        obj = cls.__new__(cls)
        obj.__dict__.update(arrays)
        return obj

    @property
    def n(self):
        return self.xi.shape[0]

    @property
    def d(self):
        return self.mu.shape[0]

    @property
    def m(self):
        return self.w0.shape[1]

    def validate(self, m: int | None = None):
        """Check shapes, finiteness and labels; ``m`` is the model's filter count if known."""
        for name in ("mu", "xi", "y", "y_true", "w0", "xi_test", "y_test", "y_true_test"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            setattr(self, name, np.ascontiguousarray(arr))
            if not np.all(np.isfinite(arr)):
                reject(f"problem.{name}", "<array with NaN or inf>", "finite values")
        d = self.mu.shape[0] if self.mu.ndim == 1 else None
        shapes = {"mu": (d,), "xi": (None, d), "y": (self.xi.shape[0],),
                  "y_true": (self.xi.shape[0],), "w0": (2, m, d),
                  "xi_test": (None, d), "y_test": (self.xi_test.shape[0],),
                  "y_true_test": (self.xi_test.shape[0],)}
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
                want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
                reject(f"problem.{name}.shape", arr.shape, want)
        for name in ("y", "y_true", "y_test", "y_true_test"):
            if not np.all(np.abs(getattr(self, name)) == 1.0):
                reject(f"problem.{name}", "<labels>", "labels in {-1, +1}")
        if self.n > self.d - 1:
            reject("problem.xi.shape", self.xi.shape, f"n <= d - 1 = {self.d - 1}")
        if self.b0 is None:
            self.b0 = np.zeros(self.w0.shape[:2])
        self.b0 = np.ascontiguousarray(np.asarray(self.b0, dtype=np.float64))
        if self.b0.shape != self.w0.shape[:2] or not np.all(np.isfinite(self.b0)):
            reject("problem.b0", self.b0.shape, f"finite values of shape {self.w0.shape[:2]}")


def flip_counts(y_true, flip):
    """round(p·n_c) for each class c in (+1, −1): the flips ``data.flip_exact`` makes.

    Halves round up (p = 0.1, n_c = 5 gives 1), so the count is ⌊p·n_c + 1/2⌋.
    """
    y_true = np.asarray(y_true)
    return {c: int(np.floor(flip * np.count_nonzero(y_true == c) + 0.5 + 1e-9))
            for c in (1.0, -1.0)}


def _labels(rng, count, flip, exact=False):
    """True labels ỹ uniform on {±1}, observed y = −ỹ for the flipped examples.

    Bernoulli flips (default): example i flips when u_i < p, u_i ~ U(0, 1). ``exact``
    (``data.flip_exact``): in each true class c exactly round(p·n_c) examples flip, those
    with the smallest u_i, a uniformly random subset drawn from the same u (so the stream,
    and every later draw from it, is the same as without ``exact``).
    """
    y_true = 2.0 * rng.integers(0, 2, size=count) - 1.0
    u = rng.random(count)
    if not exact:
        flipped = u < flip
    else:
        flipped = np.zeros(count, dtype=bool)
        for c, k in flip_counts(y_true, flip).items():
            members = np.flatnonzero(y_true == c)
            flipped[members[np.argsort(u[members], kind="stable")[:k]]] = True
    return np.where(flipped, -y_true, y_true), y_true


def _noise(rng, count, data):
    """ξ ~ N(0, σ_p² I), then, for "projected", with its μ = e_1 coordinate removed."""
    xi = data.sigma_p * rng.standard_normal((count, data.d))
    if data.noise == "projected":
        xi[:, 0] = 0.0
    return xi


def sample_problem(cfg, seed: int | None = None) -> Problem:
    """Draw the explicit problem of ``cfg`` for run ``seed`` (default ``cfg.seed``).

    μ = ‖μ‖ e_1. Observed labels are flipped with probability ``data.flip`` on the training
    and the test set (with ``data.flip_exact``: exactly round(p·n_c) in each true class c).
    Initial weights: N(0, σ0²) entries, or U(−1/√d, 1/√d) for
    ``model.init = "uniform"``; biases (if the model has them) drawn the same way.
    """
    data, model = cfg.data, cfg.model
    if data.sampler != "explicit":
        reject("data.sampler", data.sampler, "'explicit' for sample_problem (the Wishart "
               "sampler draws no d-dimensional arrays; see signoise.wishart.sample_reduced)")
    seed = cfg.seed if seed is None else int(seed)
    mu = np.zeros(data.d)
    mu[0] = data.mu

    rng = rng_for(seed, STREAM_DATA)
    y, y_true = _labels(rng, data.n, data.flip, data.flip_exact)
    xi = _noise(rng, data.n, data)

    rng = rng_for(seed, STREAM_TEST)
    y_test, y_true_test = _labels(rng, data.n_test, data.flip, data.flip_exact)
    xi_test = _noise(rng, data.n_test, data)

    rng = rng_for(seed, STREAM_INIT)
    shape = (2, model.m, data.d + 1)  # the last column is the bias
    if model.init == "gaussian":
        w = model.sigma0 * rng.standard_normal(shape)
    else:
        bound = 1.0 / np.sqrt(data.d)
        w = rng.uniform(-bound, bound, size=shape)
    b0 = w[:, :, -1].copy() if model.bias else np.zeros((2, model.m))
    return Problem.trusted(mu=mu, xi=xi, y=y, y_true=y_true, w0=np.ascontiguousarray(w[:, :, :-1]),
                           xi_test=xi_test, y_test=y_test, y_true_test=y_true_test, b0=b0)


def initial_readout(model, seed: int) -> np.ndarray:
    """The second-layer weights a_{j,r} at step 0, (2, m) (SPEC §2; ``model.readout_init``).

    "constant": a (the model's readout scale); "gaussian": N(0, 1/m); "sign": ±1/√m with fair
    random signs; the random ones times 1/2 with ``patch_pool = "mean"``. Drawn from the run's
    own readout stream, so the data, the filters and the algorithm noise do not move.
    """
    shape = (2, model.m)
    if model.readout_init == "constant":
        return np.full(shape, model.readout_scale)
    scale = (0.5 if model.patch_pool == "mean" else 1.0) / np.sqrt(model.m)
    rng = rng_for(int(seed), STREAM_READOUT)
    if model.readout_init == "gaussian":
        return scale * rng.standard_normal(shape)
    return scale * np.where(rng.random(shape) < 0.5, -1.0, 1.0)
