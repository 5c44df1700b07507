"""Array-API coefficient-space engine: the gram engine for B runs at once, on NumPy or CuPy.

The same maths as :mod:`signoise.engines.gram` + :mod:`signoise.steps` + :mod:`signoise.model`
(SPEC §2–§5), written once against the Python array API standard (``array_api_compat``) with a
leading run axis B, so one code path runs on NumPy (a vectorised CPU reference and a second
oracle for the Numba kernels) and on CuPy (GPU). State: β (B, 2, m, n+1) and the bias (B, 2, m);
pre-activations H[b, j, r, i, p]; patch coefficients Q of the same shape; patch Gram K
(B, 2n, 2n). Random inputs are drawn on the host by :func:`~signoise.draws.draw_inputs`
from each run's own stream, exactly as the gram engine does, and moved to the device, so a
config and seed give the same run on every backend.

Entry point for the driver: :class:`XPBatch` (``advance``/``evaluate``/``coefficients``, NumPy
in and out) and :func:`get_backend`. :func:`run_batch_xp` is a self-contained driver.
"""

from __future__ import annotations

import numpy as np

from . import CONVERGED, DIVERGED
from .xp_steps import XPModel

#: Algorithms this engine runs (every in-span algorithm of the gram engine).
ALGORITHMS = ("gd", "sgd", "msgd", "label_noise_gd", "gr", "pegr", "fdgr", "sam", "usam",
              "flooding", "clip", "noisy_eval", "anti_pgd", "lpg")
BACKENDS = ("numba", "numpy", "cupy")
#: float32 agreement with float64 claimed by the tests (relative, γ, ρ and losses over 30 steps
#: at margins < 10; measured ~1e-6, see docs/gpu.md).
FLOAT32_RTOL = 1e-4


def _reject(key, value, allowed):
    from ..constraints import reject
    reject(key, value, allowed)


def get_backend(name: str):
    """Array namespace of a backend name: "numpy", "cupy" (needs a device), or None for
    "numba" (today's compiled gram engine, run through ``sn.simulate_batch``)."""
    if name not in BACKENDS:
        _reject("backend", name, "'numba', 'numpy' or 'cupy'")
    if name == "numba":
        return None
    from array_api_compat import array_namespace
    if name == "numpy":
        return array_namespace(np.empty(0))
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as err:  # ImportError, CUDARuntimeError, RuntimeError
        _reject("backend", "cupy", f"CuPy and a CUDA device ({err}): install the gpu extra, "
                "pip install 'signoise[gpu]', on a machine with a GPU")
    return array_namespace(cupy.empty(0))


#: block_bytes's margin over its count: the NumPy peak (tracemalloc) reached 0.97-1.01 of the
#: bare count at B = 12..200, n_test = 400..1000 (tests/test_xp.py checks peak <= estimate).
SAFETY = 1.5


def block_bytes(B, n, m, n_test, itemsize=8, nsteps=0):
    """Device memory of a block of B runs, an upper estimate (bytes).

    Per run: G and the patch Gram K with its build temporaries ((n+1)² + 12 n²); the test set,
    G_t, Z0_t, Z_t ((n+1 + 4m) n_test) and H_t with four temporaries of its size while a record
    is evaluated (5 · 4 m n_test); ~16 arrays of H's size (4 m n) in a step; β and Z
    (4 m (n+1)); and the random inputs of a chunk of ``nsteps`` steps (≤ 2m(n+2) + 2n each);
    times :data:`SAFETY`.
    """
    k = n + 1
    per_run = (k * k + 12 * n * n + (k + 4 * m) * n_test + 20 * m * n_test + 16 * 4 * m * n
               + 4 * m * k + nsteps * (2 * m * (n + 2) + 2 * n))
    return int(SAFETY * B * per_run * itemsize)


def max_block(n, m, n_test, itemsize=8, free_bytes=None, xp_name="cupy", fraction=0.8,
              nsteps=0):
    """Largest B whose :func:`block_bytes` fits in ``fraction`` of free device memory
    (``cupy.cuda.runtime.memGetInfo`` unless ``free_bytes`` is given); an error if one run does
    not fit."""
    if free_bytes is None:
        import cupy
        free_bytes = cupy.cuda.runtime.memGetInfo()[0]
    one = block_bytes(1, n, m, n_test, itemsize, nsteps)
    B = int(fraction * free_bytes) // one
    if B < 1:
        raise MemoryError(f"one run (n={n}, m={m}, n_test={n_test}) needs ~{one} bytes of device "
                          f"memory; {free_bytes} are free on {xp_name}")
    return B


class XPBatch(XPModel):
    """B runs of equal n, m, n_test and one algorithm, on the device of namespace ``xp``.

    Parameters
    ----------
    inputs : list of GramInputs
        From :func:`signoise.engines.gram.prepare` (one per run).
    cfgs : list of RunConfig
        One per run; they may differ in every value but the algorithm's name and the shapes.
    xp : array namespace (``get_backend("numpy")``, ``get_backend("cupy")``, array_api_strict)
    dtype : the namespace's float64 (default) or float32 (opt-in, see docs/gpu.md).
    """

    def __init__(self, inputs, cfgs, xp, dtype=None):
        names = {c.algorithm.name for c in cfgs}
        if len(names) != 1:
            _reject("algorithm.name", sorted(names), "one algorithm per XPBatch")
        self.name = names.pop()
        if self.name not in ALGORITHMS:
            _reject("algorithm.name", self.name, f"one of {ALGORITHMS} on the xp engine")
        self.xp = xp
        self.dtype = xp.float64 if dtype is None else dtype
        d = self.dtype
        A = lambda x: xp.asarray(np.ascontiguousarray(x), dtype=d)  # noqa: E731
        st = lambda name: A(np.stack([getattr(i, name) for i in inputs]))  # noqa: E731
        self.G, self.Z0, self.y, self.yt = st("G"), st("Z0"), st("y"), st("y_true")
        self.Gt, self.Z0t, self.y_t, self.yt_t = st("Gt"), st("Z0t"), st("y_t"), st("y_true_t")
        self.B, _, self.m, self.k = self.Z0.shape
        self.n = self.k - 1
        col = lambda vals: A(np.array(vals, dtype=np.float64))  # noqa: E731
        self.q = col([c.model.q for c in cfgs])
        self.a = col([c.model.readout_scale for c in cfgs])
        self.use_bias = col([1.0 if c.model.bias else 0.0 for c in cfgs])
        self.lr = col([c.train.lr for c in cfgs])
        self.thr = col([c.train.loss_threshold or 0.0 for c in cfgs])
        self.theta = {key: col([_num(self.name, key, c.algorithm.params[key], c.data.n)
                                for c in cfgs])
                      for key in cfgs[0].algorithm.params}
        self.beta = xp.zeros(self.Z0.shape, dtype=d)
        self.bias = A(np.stack([i.b0 for i in inputs]))
        self.K, self.P = self._patch_gram()
        if self.name in ("noisy_eval", "anti_pgd"):
            from .gram import noise_factor
            self.F = A(np.stack([noise_factor(i.G) for i in inputs]))

    # -- public ---------------------------------------------------------------------------
    def advance(self, nsteps, omega_t, ysign_t, eps_t, active):
        """Up to ``nsteps`` steps of every active run in place; NumPy in and out.

        ``omega_t (B, nsteps|0, n)``, ``ysign_t (B, nsteps|0, n)``, ``eps_t (B, nsteps|0, 2, m,
        n+2)`` as from :meth:`draw`; ``active (B,)`` bool. Returns ``(done (B,), status (B,))``
        with gram.advance's stop rules: non-finite loss → DIVERGED before stepping; loss below
        loss_threshold → CONVERGED before stepping; non-finite state after a step → DIVERGED.
        """
        xp, d = self.xp, self.dtype
        dev = lambda x: xp.asarray(x, dtype=d) if x.shape[1] else None  # noqa: E731
        om, ys, ep = dev(omega_t), dev(ysign_t), dev(eps_t)
        with np.errstate(all="ignore"):   # divergence is a result, not a warning (NumPy)
            return self._advance(nsteps, om, ys, ep, active)

    def _advance(self, nsteps, om, ys, ep, active):
        xp = self.xp
        running = xp.asarray(np.asarray(active, dtype=bool))
        done = xp.zeros((self.B,), dtype=xp.int64)
        status = xp.zeros((self.B,), dtype=xp.int64)
        for t in range(nsteps):
            H, _ = self._preacts(self.beta, self.bias)
            dHn = self._noise_preacts(ep[:, t, ...]) if ep is not None else None
            L, Q = self._step_coef(H, ys[:, t, ...] if ys is not None else None,
                                   om[:, t, ...] if om is not None else None, dHn)
            bad = running & ~xp.isfinite(L)
            low = running & ~bad & (L < self.thr)
            done = xp.where(bad | low, t, done)
            status = xp.where(bad, DIVERGED, xp.where(low, CONVERGED, status))
            running = running & ~bad & ~low
            beta, bias = self._apply(Q, -self.lr)
            self.beta = xp.where(self._b(running, 4), beta, self.beta)
            self.bias = xp.where(self._b(running, 3), bias, self.bias)
            blown = running & ~(self._finite(self.beta) & self._finite(self.bias))
            done = xp.where(blown, t + 1, done)
            status = xp.where(blown, DIVERGED, status)
            running = running & ~blown
            if not bool(xp.any(running)):
                break
        done = xp.where(running, nsteps, done)
        return _host(done), _host(status)

    def evaluate(self):
        """:data:`~signoise.diagnostics.METRICS` of every run, (B, len(METRICS)) NumPy."""
        with np.errstate(all="ignore"):
            return self._evaluate()

    def _evaluate(self):
        xp, n = self.xp, self.n
        H, Z = self._preacts(self.beta, self.bias)
        B, _, m, k = self.beta.shape
        Zt = xp.reshape(xp.reshape(self.beta, (B, 2 * m, k)) @ self.Gt, (B, 2, m, -1)) + self.Z0t
        b = self.bias[..., None]
        Ht = xp.stack([self.yt_t[:, None, None, :] * Z[..., 0:1] + b, Zt + b], axis=-1)
        f = self._outputs(H)
        mg = self.y * f
        loss, d1, d2 = self._logistic(mg)
        ft = self._outputs(Ht)
        lt, _, _ = self._logistic(self.y_t * ft)
        one, zero = xp.ones_like(mg), xp.zeros_like(mg)
        err = xp.sum(xp.where(mg <= 0.0, one, zero), axis=1) / n
        onet, zerot = xp.ones_like(ft), xp.zeros_like(ft)
        nt = ft.shape[1]
        cols = [xp.sum(loss, axis=1) / n, err, xp.sum(lt, axis=1) / nt,
                xp.sum(xp.where(self.y_t * ft <= 0.0, onet, zerot), axis=1) / nt,
                xp.sum(xp.where(self.yt_t * ft <= 0.0, onet, zerot), axis=1) / nt,
                # NaN margins are skipped, as Python's min/max in the Numba kernel skip them
                xp.min(xp.where(xp.isnan(mg), xp.inf, mg), axis=1),
                xp.max(xp.where(xp.isnan(mg), -xp.inf, mg), axis=1)]
        # diagnostics (model.diagnostics)
        Q = self._gd_coef(H, self.y, d1, xp.full((B, n), 1.0 / n, dtype=self.dtype))
        g2 = self._fdot(Q, self._delta(Q))
        S1 = self._act(H, 1)
        T = self._example_sq(S1)
        gi2 = xp.sum(d1 * d1 * T / n, axis=1)
        Pd = xp.stack([self.P[..., 0, 0], self.P[..., 1, 1]], axis=-1)[:, None, None, ...]
        curv = xp.sum(xp.sum(xp.sum(self._cj(5) * self._act(H, 2) * Pd, axis=-1), axis=2), axis=1)
        trace = xp.sum((d2 * T + d1 * self.y * curv) / n, axis=1)
        mu2 = self.G[:, 0, 0]
        x0 = self.yt * self._b(mu2, 2)
        x1 = self.G[:, 1:, 0]
        ai = n * (Q[..., 0] * x0[:, None, None, :] + Q[..., 1] * x1[:, None, None, :])
        mean = xp.sum(ai / n, axis=-1)
        sq = xp.sum(ai * ai / n, axis=-1)
        safe = xp.where(mu2 > 0.0, mu2, xp.ones_like(mu2))
        signal = xp.where(mu2 > 0.0, xp.sum(xp.sum(sq - mean * mean, axis=-1), axis=-1) / safe,
                          xp.zeros_like(mu2))
        cols += [g2, gi2, gi2 - g2, signal, gi2 - g2 - signal, trace]
        return _host(xp.stack(cols, axis=1)).astype(np.float64)

    def coefficients(self):
        """(γ (B, 2, m), ρ (B, 2, m, n)) as float64 NumPy: γ = j β_0 ‖μ‖², ρ = β_i ‖ξ_i‖²."""
        beta = _host(self.beta).astype(np.float64)
        G = _host(self.G).astype(np.float64)
        sq = np.einsum("bii->bi", G)
        jsign = np.array([1.0, -1.0])[None, :, None]
        return jsign * beta[..., 0] * sq[:, None, None, 0], beta[..., 1:] * sq[:, None, None, 1:]


def _num(name, key, value, n):
    """A parameter value as a number (string choices by the registry's encoding; sgd's unset
    batch size is the full batch n)."""
    from ..algorithms import ALGORITHMS as REGISTRY
    return float(n if value is None else REGISTRY[name].params[key].encode(value))


def _host(x):
    """A device array as NumPy (CuPy's .get(), array_api_strict / NumPy via the buffer)."""
    if hasattr(x, "get"):
        return x.get()
    try:
        return np.asarray(x)
    except Exception:  # array_api_strict refuses __array__ in recent versions
        return np.from_dlpack(x)


class Batch(XPBatch):
    """:class:`XPBatch` behind the interface of :class:`signoise.engines.gram.Batch`, so the one
    driver (:mod:`signoise.driver`) runs it: ``simulate(..., backend="numpy"|"cupy")``."""

    def __init__(self, runs, xp, dtype=None):
        if _is_cupy(xp):   # before allocating: the whole batch must fit the device
            c = runs[0].cfg
            shape = (c.data.n, c.model.m, c.data.n_test)
            fits = max_block(*shape, nsteps=c.train.record_every)   # errs if one run cannot
            if len(runs) > fits:
                need = block_bytes(len(runs), *shape, nsteps=c.train.record_every)
                _reject("backend", "cupy", f"batches of at most {fits} runs on this device "
                        f"(these {len(runs)} need ~{need / 1e9:.3g} GB): fewer runs per "
                        "simulate_batch call, or a smaller sweep block (block=...)")
        super().__init__([r.inputs for r in runs], [r.cfg for r in runs], xp, dtype)

    @property
    def noise_width(self):
        return [self.n + 2] * self.B

    def advance(self, nsteps, omega, ysign, zeta, active):
        from .gram import _stack

        return super().advance(nsteps, _stack(omega, 1.0 / self.n), _stack(ysign, 1.0),
                               _stack(zeta, 0.0), active)

    def evaluate(self, out):
        out[...] = super().evaluate()

    def coefficients(self):
        gamma, rho = super().coefficients()
        return gamma, rho, None

    def get_state(self):
        return {"beta": _host(self.beta).astype(np.float64),
                "bias": _host(self.bias).astype(np.float64)}

    def set_state(self, state):
        self.beta = self.xp.asarray(np.ascontiguousarray(state["beta"]), dtype=self.dtype)
        self.bias = self.xp.asarray(np.ascontiguousarray(state["bias"]), dtype=self.dtype)


def run_batch_xp(cfgs, seeds, xp, dtype=None, block=None):
    """Runs through the one driver on namespace ``xp``, in blocks; the records as arrays.

    Returns a dict: ``step``, ``metrics (B, S, len(METRICS))``, ``gamma``, ``rho``, ``status``,
    ``stopped_at``. ``block``: runs per block (default: all, or what fits the device on CuPy).
    """
    from ..driver import prepare_many, run

    cfgs, seeds = list(cfgs), list(seeds)
    if block is None:
        c = cfgs[0]
        block = len(cfgs) if not _is_cupy(xp) else max_block(
            c.data.n, c.model.m, c.data.n_test, nsteps=c.train.record_every)
    if block < 1:
        _reject("block", block, "an integer >= 1")
    parts = []
    for i in range(0, len(cfgs), block):
        runs = prepare_many(cfgs[i:i + block], seeds[i:i + block], "gram")
        parts.append(run(runs, "gram", record_rho="full", quiet=True, backend=xp, dtype=dtype))
    return {"step": parts[0].steps,
            "metrics": np.concatenate([p.metrics for p in parts]),
            "gamma": np.concatenate([p.gamma for p in parts]),
            "rho": np.concatenate([p.rho for p in parts]),
            "status": np.concatenate([p.status for p in parts]),
            "stopped_at": np.concatenate([p.stopped_at for p in parts])}


def _is_cupy(xp):
    return "cupy" in getattr(xp, "__name__", "")
