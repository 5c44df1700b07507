"""The d-free sampler (SPEC §3): every inner product a run needs, exact in law, at any d.

The network only ever sees inner products among μ, the training noises ξ_i, the initial
filters w0_{j,r} and the test noises. This module draws them jointly, with the Bartlett
decomposition of a Wishart matrix, as the coordinates of those vectors in a space of
dimension 1 + n + 2m: coordinate 0 is the signal direction e_1, the others an orthonormal
basis of the span of the training-side vectors' components orthogonal to e_1. The result is
a *reduced problem*: a :class:`~signoise.data.Problem` of dimension 1 + n + 2m whose every
inner product has the joint law of the d-dimensional one. No d-dimensional vector is ever
formed; set-up costs O((n + 2m)² + n_test (n + 2m)) whatever d is.
"""

from __future__ import annotations

import numpy as np

from .data import STREAM_DATA, STREAM_INIT, STREAM_TEST, Problem, _labels, rng_for
from .constraints import reject


def bartlett_rows(rng: np.random.Generator, dof: float, first: int, count: int) -> np.ndarray:
    """Rows ``first .. first+count−1`` of the Bartlett factor of Wishart(dof, I_k).

    Parameters
    ----------
    rng : numpy.random.Generator
        The stream to draw from.
    dof : float
        Degrees of freedom ν (here d − 1); ν ≥ first + count is required.
    first, count : int
        The block of rows to draw.

    Returns
    -------
    numpy.ndarray, shape (count, first + count)
        Rows of L, zeros above the diagonal.

    Notes
    -----
    Bartlett decomposition (Bartlett 1933; e.g. Anderson, *An Introduction to Multivariate
    Statistical Analysis*, ch. 7): with L lower triangular and independent entries

        L_ii² ~ χ²_{ν − i}  (0-based i),    L_ic ~ N(0, 1)  for c < i,

    A = L Lᵀ ~ Wishart(ν, I_k). Row i of L holds the coordinates of the i-th of k i.i.d.
    N(0, I_ν) vectors in the orthonormal basis that Gram–Schmidt builds from vectors 0..i, so
    blocks of rows can be drawn from different streams. Within a block the normals are drawn
    first, row by row, then the χ² draws.
    """
    width = first + count
    rows = np.arange(first, width)
    L = np.zeros((count, width))
    below = np.arange(width)[None, :] < rows[:, None]
    L[below] = rng.standard_normal(int(below.sum()))        # row by row (C order)
    L[np.arange(count), rows] = np.sqrt(rng.chisquare(dof - rows))
    return L


def check_wishart(cfg) -> None:
    """Reject configs the Wishart sampler cannot draw exactly (names key, value, remedy)."""
    data, model = cfg.data, cfg.model
    k = data.n + 2 * model.m
    if data.d - 1 < k:
        reject("data.d", data.d, f"d - 1 >= n + 2m = {k} (the Bartlett decomposition needs at "
               "least as many dimensions as training-side vectors); use data.sampler = "
               "'explicit' at this d", context="with data.sampler = 'wishart'")
    if model.init != "gaussian":
        reject("model.init", model.init, "'gaussian' (only Gaussian filters have a Wishart Gram "
               "matrix); use data.sampler = 'explicit' for uniform initialisation",
               context="with data.sampler = 'wishart'")


def sample_reduced(cfg, seed: int | None = None) -> Problem:
    """Draw the reduced problem of ``cfg`` for run ``seed``: exact in law, no d-vector.

    Parameters
    ----------
    cfg : RunConfig
        Any config; only its data and model sections are read (``data.d`` enters only as
        the degrees of freedom of the Wishart law).
    seed : int, optional
        Run seed (default ``cfg.seed``).

    Returns
    -------
    Problem
        Arrays of dimension D = 1 + k, k = n + 2m: ``mu = ‖μ‖ e_0``; ``xi[i] = σ_p (c_i, L_i)``;
        ``w0[j, r] = σ0 (e_{j,r}, L_{n + jm + r})``; ``xi_test[t] = σ_p (c_t, g_t)``.

    Notes
    -----
    In the complement of μ, ξ_i/σ_p and w0⊥_{j,r}/σ0 are k i.i.d. N(0, I_{d−1}) vectors, so
    their Gram matrix is L Lᵀ ~ Wishart(d − 1, I_k) (:func:`bartlett_rows`). The e_1
    coordinates are independent: e_{j,r} ~ N(0, 1) for the filters; c_i ~ N(0, 1) for
    ``noise = "isotropic"`` and c_i = 0 for "projected". A fresh test noise, independent of
    everything else, has complement coordinates g_t ~ N(0, I_k) in the same orthonormal
    basis (its component outside the span meets no vector the network uses), so its inner
    products with the training-side vectors are N(0, σ_p² L Lᵀ) given L, i.e. exactly the
    conditional Gaussian law of SPEC §3. Streams (DESIGN.md principle 4): labels and the ξ
    rows of L (which do not depend on m) use the data stream, filter rows and biases the init
    stream, test labels and coordinates the test stream; training and test labels equal the
    explicit sampler's for the same seed.
    """
    check_wishart(cfg)
    data, model = cfg.data, cfg.model
    seed = cfg.seed if seed is None else int(seed)
    n, m, nu = data.n, model.m, data.d - 1
    k = n + 2 * m
    iso = data.noise == "isotropic"

    rng = rng_for(seed, STREAM_DATA)
    y, y_true = _labels(rng, n, data.flip, data.flip_exact)
    xi = np.zeros((n, 1 + k))
    xi[:, 1:1 + n] = bartlett_rows(rng, nu, 0, n)
    if iso:
        xi[:, 0] = rng.standard_normal(n)
    xi *= data.sigma_p

    rng = rng_for(seed, STREAM_INIT)
    w0 = np.zeros((2 * m, 1 + k))
    w0[:, 1:] = bartlett_rows(rng, nu, n, 2 * m)
    w0[:, 0] = rng.standard_normal(2 * m)
    w0 = model.sigma0 * w0.reshape(2, m, 1 + k)
    b0 = model.sigma0 * rng.standard_normal((2, m)) if model.bias else np.zeros((2, m))

    rng = rng_for(seed, STREAM_TEST)
    y_test, y_true_test = _labels(rng, data.n_test, data.flip, data.flip_exact)
    xi_test = draw_test_coordinates(rng, data.n_test, k, data.sigma_p, iso)

    mu = np.zeros(1 + k)
    mu[0] = data.mu
    return Problem.trusted(mu=mu, xi=xi, y=y, y_true=y_true, w0=w0, xi_test=xi_test,
                           y_test=y_test, y_true_test=y_true_test, b0=b0)


def draw_test_coordinates(rng, count: int, k: int, sigma_p: float,
                          isotropic: bool) -> np.ndarray:
    """Coordinates of fresh test noises in a reduced problem's space.

    Parameters
    ----------
    rng : numpy.random.Generator
    count : int
        Number of test noises.
    k : int
        n + 2m, the number of training-side vectors (the space has dimension 1 + k).
    sigma_p : float
        Noise scale σ_p.
    isotropic : bool
        ``noise = "isotropic"`` (a signal coordinate too) or "projected" (none).

    Returns
    -------
    numpy.ndarray, shape (count, 1 + k)
        Row t is σ_p (c_t, g_t), g_t ~ N(0, I_k), c_t ~ N(0, 1) or 0: the part of a fresh
        N(0, σ_p² I) or N(0, σ_p² (I − e_1e_1ᵀ)) vector that a training-side vector can see.
    """
    out = rng.standard_normal((count, 1 + k))
    if not isotropic:
        out[:, 0] = 0.0
    out *= sigma_p
    return out


def sample_gram_inputs(cfg, seed: int | None = None):
    """The gram engine's inputs, drawn without d.

    Returns
    -------
    signoise.engines.gram.GramInputs
        ``gram.prepare(sample_reduced(cfg, seed))``: G, Z0, b0, labels and the test set's
        Gt, Z0t, with the joint law of the explicit sampler's at ``data.d``.
    """
    from .engines import gram

    return gram.prepare(sample_reduced(cfg, seed))


def fresh_test_inputs(problem: Problem, inp, cfg, rng: np.random.Generator):
    """A copy of the gram inputs ``inp`` with a fresh test set of the same size.

    For re-drawing the test points at every recorded step (an unbiased, independent estimate
    of the test error each time).

    Parameters
    ----------
    problem : Problem
        The run's problem: reduced (dimension 1 + n + 2m, :func:`sample_reduced`; new points
        by :func:`draw_test_coordinates`, cost independent of d) or explicit (d-dimensional
        noises).
    inp : signoise.engines.gram.GramInputs
        ``gram.prepare(problem)``.
    cfg : RunConfig
        Noise model, σ_p, flip rate and ``n_test``.
    rng : numpy.random.Generator
        The stream of the new test sets (labels drawn as in ``sample_problem``).

    Returns
    -------
    signoise.engines.gram.GramInputs
        ``inp`` with new ``Gt``, ``Z0t``, ``y_t``, ``y_true_t``.
    """
    from dataclasses import replace

    from .data import _noise

    data = cfg.data
    y_t, y_true_t = _labels(rng, data.n_test, data.flip, data.flip_exact)
    if problem.d != data.d:
        xt = draw_test_coordinates(rng, data.n_test, problem.d - 1, data.sigma_p,
                                   data.noise == "isotropic")
    else:
        xt = _noise(rng, data.n_test, data)
    V = np.vstack([problem.mu[None, :], problem.xi])
    m = problem.w0.shape[1]
    Z0t = (problem.w0.reshape(2 * m, -1) @ xt.T).reshape(2, m, -1)
    return replace(inp, Gt=np.ascontiguousarray(V @ xt.T), Z0t=np.ascontiguousarray(Z0t),
                   y_t=y_t, y_true_t=y_true_t)


def population_test_error(problem: Problem, ds, cfg, points: int = 100_000,
                          seed: int = 0) -> dict:
    """Test loss and errors of every recorded step against *fresh* test points, without d.

    For each recorded step the filters are rebuilt from the recorded coefficients,
    w_{j,r} = w0_{j,r} + j γ_{j,r} μ/‖μ‖² + Σ_i ρ_{j,r,i} ξ_i/‖ξ_i‖² (SPEC §3), and the
    population quantities E_x[·] over a fresh example x = (ỹ, y, ỹμ, ξ) are estimated by
    Monte Carlo with ``points`` fresh noise draws per step (new ones at every step). Given the
    filters, the noise pre-activations (⟨w_{j,r}, ξ⟩)_{j,r} are exactly N(0, σ_p² C) with C
    the Gram matrix of the filters (of their components orthogonal to μ for projected noise);
    the labels are averaged exactly (ỹ = ±1, flipped with probability p). The cost per step is
    O(m² D + points·m), independent of d for a reduced problem and of n always.

    Parameters
    ----------
    problem : Problem
        The run's problem: explicit (:func:`~signoise.data.sample_problem`) or reduced
        (:func:`sample_reduced`), with μ along e_0 as both samplers build it.
    ds : xarray.Dataset
        The result of :func:`~signoise.simulate` on that problem (``gamma``, ``rho``).
    cfg : RunConfig
        The run's config (noise model, σ_p, flip, activation, readout scale).
    points : int
        Fresh noise draws per recorded step; the standard error of an error rate is at most
        0.5/√points.
    seed : int
        Seed of the Monte Carlo draws (its own stream, so training is not moved).

    Returns
    -------
    dict of numpy arrays over the recorded steps
        ``test_loss``, ``test_error`` (observed labels), ``test_error_clean`` (true labels) and
        ``test_error_se`` (standard error of ``test_error``).
    """
    from .preacts import outputs
    if cfg.model.bias:
        reject("model.bias", True, "False for population_test_error (biases are not recorded)")
    points = int(points)
    if points < 2:
        reject("points", points, "an integer >= 2")
    data, model = cfg.data, cfg.model
    m, q, a, p = model.m, float(model.q), float(model.readout_scale), data.flip
    mu2 = float(problem.mu @ problem.mu)
    sq = np.einsum("id,id->i", problem.xi, problem.xi)
    j = np.array([1.0, -1.0])[:, None, None]
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(7,))))
    gamma, rho = np.asarray(ds["gamma"]), np.asarray(ds["rho"])
    out = {name: np.empty(gamma.shape[0]) for name in
           ("test_loss", "test_error", "test_error_clean", "test_error_se")}
    for s in range(gamma.shape[0]):
        W = problem.w0 + np.einsum("jri,id->jrd", rho[s] / sq, problem.xi)
        if mu2 > 0:
            W = W + (j[:, :, 0] * gamma[s] / mu2)[:, :, None] * problem.mu
        W2 = W.reshape(2 * m, -1)
        sig = W2 @ problem.mu                              # ⟨w, μ⟩
        seen = W2[:, 1:] if data.noise == "projected" else W2
        C = data.sigma_p ** 2 * (seen @ seen.T)
        evals, evecs = np.linalg.eigh(C)                   # C may be singular: no Cholesky
        root = evecs * np.sqrt(np.clip(evals, 0.0, None))
        Zn = root @ rng.standard_normal((2 * m, points))  # (2m, points) noise pre-activations
        loss = clean = 0.0
        per_point = np.zeros(points)
        for yt in (1.0, -1.0):
            H = np.empty((2, m, points, 2))
            H[..., 0] = (yt * sig).reshape(2, m)[:, :, None]
            H[..., 1] = Zn.reshape(2, m, points)
            f = np.empty(points)
            outputs(H, q, a, f)
            wrong, wrong_flip = (yt * f <= 0), (-yt * f <= 0)
            loss += 0.5 * (1 - p) * np.mean(np.logaddexp(0.0, -yt * f))
            if p > 0:
                loss += 0.5 * p * np.mean(np.logaddexp(0.0, yt * f))
            e = 0.5 * ((1 - p) * wrong + p * wrong_flip)
            per_point += e
            clean += 0.5 * wrong.mean()
        out["test_loss"][s] = loss
        out["test_error"][s] = per_point.mean()
        out["test_error_clean"][s] = clean
        out["test_error_se"][s] = per_point.std(ddof=1) / np.sqrt(points)
    return out


__all__ = ["bartlett_rows", "check_wishart", "sample_reduced", "sample_gram_inputs",
           "draw_test_coordinates", "fresh_test_inputs", "population_test_error"]
