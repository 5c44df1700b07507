"""The one training driver: B runs advanced in lock-step from record to record.

:func:`~signoise.simulate` is :func:`~signoise.simulate_batch` with one run; both prepare their
runs with :func:`prepare` and train them with :func:`run`, which owns the loop: random inputs
drawn per run outside the kernels (DESIGN.md principle 4), the engine's batch kernel advanced in
chunks of bounded work (so an interrupt is honoured within a fraction of a second), records
written into preallocated arrays, and the stop rules (divergence, convergence, interrupt).
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from . import algorithms as A
from . import interrupt
from .algorithms import ALGORITHMS, run_record
from .constraints import reject
from .data import STREAM_ALGO, Problem, initial_readout, rng_for, sample_problem
from .diagnostics import METRICS
from .draws import draw_inputs
from .engines import CONVERGED, DIVERGED, RUNNING, get_engine
from .engines.blas import single_threaded_blas
from .guard import SignoiseWarning

#: Status of a run that was asked to stop (SIGINT/SIGTERM); the others are the kernels'.
INTERRUPTED = 3
STATUS = {RUNNING: "finished", DIVERGED: "diverged", CONVERGED: "converged",
          INTERRUPTED: "interrupted"}

#: Config keys every run of one batch must share: the array shapes and the record schedule.
SHAPE_KEYS = ("data.n", "model.m", "data.n_test", "train.steps", "train.record_every")

#: Work (multiply-adds) per kernel call, over the whole batch: ≲ 0.1 s, the interrupt latency
#: (the gram step at n = 20, m = 10 does its ≈ 1.7·10⁴ in about 3 µs). Each call has a fixed
#: cost per run (its buffers), so fewer, longer calls pay: 10³ Kou runs take a whole record
#: interval of 25 steps in one call.
CHUNK_WORK = 5e8
#: Bytes of random inputs drawn per kernel call, over the whole batch.
CHUNK_DRAWS = 2 ** 25


@dataclass
class Run:
    """One prepared run: its config, seed, problem, engine inputs and kernel parameters."""

    cfg: object
    seed: int
    problem: Problem | None    # None once the gram inputs are built (release_draws)
    inputs: object
    params: np.ndarray         # run_record(cfg): the kernels' parameters
    readout: np.ndarray | None = None   # (2, m) initial a_{j,r} (None: the scalar readout)
    _rng: np.random.Generator | None = None

    def __post_init__(self):
        if self.readout is None and self.cfg.model.per_filter_readout:
            self.readout = initial_readout(self.cfg.model, self.seed)

    @property
    def rng(self) -> np.random.Generator:
        """The generator of the run's algorithm noise (made when first asked for)."""
        if self._rng is None:
            self._rng = rng_for(self.seed, STREAM_ALGO)
        return self._rng

    def rng_state(self) -> str:
        """The generator's state as JSON ("" when it was never used: it is then the seed's)."""
        return "" if self._rng is None else json.dumps(self._rng.bit_generator.state)


def prepare(cfg, seed: int, engine: str, problem: Problem | None = None) -> Run:
    """Validate the (config, engine) pair, then sample (or check) the problem and the inputs."""
    E = get_engine(engine)
    if engine == "gram" and not ALGORITHMS[cfg.algorithm.name].in_span:
        reject("algorithm.name", cfg.algorithm.name,
               "an algorithm that keeps w − w0 in span{μ, ξ_i} on engine 'gram' "
               "(this one leaves the span: use engine='weights', CLI --engine weights)")
    problem = _problem(cfg, engine, seed, problem)
    return Run(cfg, seed, problem, E.prepare(problem), run_record(cfg))


def prepare_many(cfgs, seeds, engine: str) -> list:
    """:func:`prepare` for many runs, drawing once what they share.

    The data, the test set and the initial filters of a run depend on its seed and its data
    and model sections, but not on ‖μ‖ (μ = ‖μ‖ e_1 is set after the draws). Runs that differ
    only in ‖μ‖ (and in sections that draw nothing: algorithm, train) reuse one draw, with the
    μ entries of their inputs recomputed exactly (:func:`signoise.engines.gram.with_signal`):
    the numbers equal those of separate draws bit for bit.
    """
    from .engines.gram import with_signal

    shared, draws_of, records = {}, {}, {}
    runs = []
    for cfg, seed in zip(cfgs, seeds):
        if id(cfg) not in draws_of:   # what the draws depend on: all but ‖μ‖ of data, model
            d = cfg.to_dict()
            draws_of[id(cfg)] = (tuple(sorted((k, v) for k, v in d["data"].items()
                                              if k not in ("mu_norm", "snr"))),
                                 tuple(sorted(d["model"].items())))
        key = (seed,) + draws_of[id(cfg)]
        first = shared.get(key)
        if first is None:
            shared[key] = first = prepare(cfg, seed, engine)
            runs.append(first)
            continue
        if id(cfg) not in records:    # one record per config (the kernels only read it)
            if engine == "gram" and not ALGORITHMS[cfg.algorithm.name].in_span:
                prepare(cfg, seed, engine)   # raises
            records[id(cfg)] = run_record(cfg)
        if engine == "gram":   # the engine reads only the inner products (release_draws)
            problem = None
            inputs = with_signal(first.inputs, first.problem, cfg.data.mu,
                                 cfg.data.noise == "isotropic")
        else:
            mu = np.zeros(first.problem.mu.shape)
            mu[0] = cfg.data.mu
            problem = Problem.trusted(**{**first.problem.__dict__, "mu": mu})
            inputs = get_engine(engine).prepare(problem)
        runs.append(Run(cfg, seed, problem, inputs, records[id(cfg)]))
    if engine == "gram":
        release_draws(runs)
    return runs


@dataclass(frozen=True)
class Labels:
    """What the Dataset keeps of a trained run's inputs: its observed and true labels."""

    y: np.ndarray
    y_true: np.ndarray


def keep_labels(runs) -> None:
    """After training, keep of each run's inputs only its labels (copied), so that a trained
    block's test sets and Gram matrices are freed before the next block is drawn."""
    for r in runs:
        r.inputs = Labels(np.array(r.inputs.y), np.array(r.inputs.y_true))


def release_draws(runs) -> None:
    """Drop the runs' problems once their gram inputs are built: the engine reads only the
    inner products, and a Wishart-reduced problem keeps its test coordinates (n_test × (1 +
    n + 2m)), as large as the inputs' test set itself (at the Kou setting, 0.33 MB per run).
    The problems a caller passed in stay the caller's; only the runs' references go."""
    for r in runs:
        r.problem = None


def _problem(cfg, engine, seed, problem):
    """The run's problem: given, explicit, or Wishart-reduced (SPEC §3, signoise.wishart)."""
    wishart = cfg.data.sampler == "wishart"
    if wishart and engine != "gram":
        reject("engine", engine, "'gram' with data.sampler = 'wishart' (it draws inner "
               "products, not weights); use data.sampler = 'explicit' for engine 'weights'")
    if problem is None:
        from .wishart import sample_reduced

        return (sample_reduced if wishart else sample_problem)(cfg, seed)
    if not isinstance(problem, Problem):
        reject("problem", type(problem).__name__, "a signoise.Problem")
    if wishart and problem.d == 1 + cfg.data.n + 2 * cfg.model.m and problem.n == cfg.data.n:
        problem.validate(m=cfg.model.m)  # a reduced problem from wishart.sample_reduced
        return problem
    problem.validate(m=cfg.model.m)
    for key, have, want in (("n", problem.n, cfg.data.n), ("d", problem.d, cfg.data.d)):
        if have != want:
            reject(f"problem.{key}", have, f"data.{key} = {want} from the config")
    return problem


def check_shared(cfgs) -> None:
    """Every run of a batch shares :data:`SHAPE_KEYS`; the first that differs is named."""
    ref = cfgs[0]
    seen = {id(ref)}
    for c in cfgs[1:]:
        if id(c) in seen:
            continue
        seen.add(id(c))
        for key in SHAPE_KEYS:
            if c.get(key) != ref.get(key):
                reject(key, c.get(key), f"the same value in every run of a batch ({ref.get(key)})")


def schedule(train, start: int = 0) -> np.ndarray:
    """Recorded steps: start, start + k, start + 2k, ..., train.steps (both ends included)."""
    return np.unique(np.r_[np.arange(start, train.steps, train.record_every), train.steps])


@dataclass
class Records:
    """What :func:`run` recorded, run axis first (B runs, S recorded steps)."""

    steps: np.ndarray         # (S,)
    metrics: np.ndarray       # (B, S, len(METRICS))
    gamma: np.ndarray         # (B, S, 2, m)
    rho: np.ndarray | None    # (B, S, 2, m, n) when record_rho == "full"
    rho_summary: np.ndarray   # (B, S, 3): max ρ̄, min ρ̲, mean_i max_r ρ̄
    residual: np.ndarray | None  # (B, S, 2, m), weights engine
    readout: np.ndarray | None   # (B, S, 2, m) a_{j,r}, when some run has a per-filter readout
    status: np.ndarray        # (B,) RUNNING (finished), DIVERGED, CONVERGED, INTERRUPTED
    stopped_at: np.ndarray    # (B,) the step each run reached
    state: dict               # name -> (B, ...) the final state (for continuing)
    rng_states: list          # the algorithm generators' states, JSON
    warnings: list            # texts, also issued once as SignoiseWarning


def rho_summaries(rho, y):
    """max ρ̄, min ρ̲ and mean_i max_r ρ̄_{y_i,r,i} over the trailing (j, r, i) axes of ρ."""
    own = y[..., None, None, :] == np.array([1.0, -1.0])[:, None, None]   # y_i = j, (..., 2, 1, n)
    rho_bar = np.where(own, rho, -np.inf)
    return (rho_bar.max(axis=(-3, -2, -1)), np.where(~own, rho, np.inf).min(axis=(-3, -2, -1)),
            rho_bar.max(axis=-2).max(axis=-2).mean(axis=-1))


#: Rules that draw Gaussian weight noise every step (their draws bound the chunk too).
_NOISE_CODES = (A.NOISY_EVAL, A.ANTI_PGD, A.PGD, A.GRAD_NOISE)


def make_batch(runs, engine, backend="numba", dtype=None):
    """The engine's Batch of ``runs``: compiled (``backend = "numba"``) or array-API."""
    per_filter = [r for r in runs if r.readout is not None]
    if backend in (None, "numba"):
        readouts = None if not per_filter else [
            r.readout if r.readout is not None else np.full((2, r.cfg.model.m), r.params[0]["a"])
            for r in runs]
        return get_engine(engine).Batch([r.inputs for r in runs], [r.params for r in runs],
                                        readouts)
    if per_filter:
        m = per_filter[0].cfg.model
        reject("model.readout", m.readout, "'fixed' with readout_init 'constant' on backend "
               f"{backend!r} (the array-API engine has the fixed readout only; use backend "
               "'numba')", context=f"with model.readout_init = {m.readout_init!r}")
    if engine != "gram":
        reject("backend", backend, "'numba' with engine 'weights' (the array-API engine "
               "works in coefficient space: engine 'gram')")
    from .engines import xp

    namespace = xp.get_backend(backend) if isinstance(backend, str) else backend
    return xp.Batch(runs, namespace, dtype)


def _chunk(runs, engine, widths, longest):
    """Steps per kernel call: bounded work (:data:`CHUNK_WORK`) and draws (:data:`CHUNK_DRAWS`)."""
    cfg = runs[0].cfg
    n, m, B = cfg.data.n, cfg.model.m, len(runs)
    if engine == "gram":   # β G, then O(m n) work per example
        per_step = 2 * m * (n + 1) * (n + 1) + 40 * m * n
    else:                  # two products with the (2n, d) patches
        per_step = 8 * m * n * max(widths)
    k = CHUNK_WORK / (B * per_step)
    if any(r.params[0]["code"] in _NOISE_CODES for r in runs):
        k = min(k, CHUNK_DRAWS / (8 * B * 2 * m * max(widths)))
    return int(max(1, min(longest, k)))


def run(runs: list, engine: str, record_rho: str = "summary", quiet: bool = False,
        start: dict | None = None, backend="numba", dtype=None, warn: bool = True) -> Records:
    """Train ``runs`` (equal :data:`SHAPE_KEYS`) on ``engine`` and record them.

    Parameters
    ----------
    runs : list of Run
        From :func:`prepare`.
    engine : str
        "gram" or "weights".
    record_rho : {"summary", "full"}
        "full" keeps ρ (B, S, 2, m, n); "summary" keeps only its three summaries (the full
        array of one record exists only while it is summarised).
    quiet : bool
        No progress bar.
    start : dict, optional
        Continue from a saved state: ``{"t": step, "state": {name: (B, ...)},
        "rng_states": [...]}`` (see :func:`signoise.simulate`).
    backend : {"numba", "numpy", "cupy"} or an array namespace
        "numba": the engine's compiled kernels; otherwise the array-API engine
        (:mod:`signoise.engines.xp`, gram engine only) on that namespace, with ``dtype``.
    warn : bool
        Emit the warnings (they are always in ``Records.warnings``); :func:`join` emits those
        of several blocks once.

    Notes
    -----
    A run stops when its loss is non-finite or its state becomes so (DIVERGED), or when the
    loss falls below ``train.loss_threshold`` (CONVERGED); a converged run keeps its final state
    at later records, a diverged one has every record at and after ``stopped_at`` set to NaN.
    When :func:`signoise.interrupt.requested` turns true, every run stops at the end of the
    current chunk; a last record is taken there and the runs are marked INTERRUPTED.
    """
    import numba

    from .guard import preflight

    cfg0 = runs[0].cfg
    B, n, m = len(runs), cfg0.data.n, cfg0.model.m
    with warnings.catch_warnings():
        if not warn:
            warnings.simplefilter("ignore", SignoiseWarning)
        advice = preflight([r.cfg for r in runs], engine, record_rho)   # refuses what cannot fit
    t0 = 0 if start is None else int(start["t"])
    steps = schedule(cfg0.train, t0)
    batch = make_batch(runs, engine, backend, dtype)
    if start is not None:
        batch.set_state(start["state"])
        for r, s in zip(runs, start["rng_states"]):
            if s:
                r.rng.bit_generator.state = json.loads(s)
    widths = batch.noise_width
    S = len(steps)
    metrics = np.full((B, S, len(METRICS)), np.nan)
    gamma = np.full((B, S, 2, m), np.nan)
    rho = np.full((B, S, 2, m, n), np.nan) if record_rho == "full" else None
    summary = np.full((B, S, 3), np.nan)
    residual = np.full((B, S, 2, m), np.nan) if engine == "weights" else None
    readout = (np.full((B, S, 2, m), np.nan) if any(r.readout is not None for r in runs)
               else None)
    status = np.full(B, RUNNING, np.int64)
    stopped_at = np.full(B, t0, np.int64)
    active = np.ones(B, np.bool_)
    y = np.stack([r.inputs.y for r in runs])
    out = np.empty((B, len(METRICS)))
    stochastic = [ALGORITHMS[r.cfg.algorithm.name].stochastic for r in runs]
    none = (np.empty((0, n)), np.empty((0, n)), np.empty((0, 2, m, widths[0])))
    compiled_summaries = rho is None and hasattr(batch, "summaries")

    def record(k, t):
        with np.errstate(all="ignore"):
            batch.evaluate(out)
            if compiled_summaries:   # γ and the summaries straight from the state, no ρ
                g, summary[:, k] = batch.summaries()
                res = None
            else:
                g, rh, res = batch.coefficients()
                if rho is not None:
                    rho[:, k] = rh
                summary[:, k] = np.stack(rho_summaries(rh, y), axis=-1)
            metrics[:, k] = out
            gamma[:, k] = g
            if residual is not None:
                residual[:, k] = res
            if readout is not None:
                readout[:, k] = batch.ro
        # a state whose loss overflows diverged here, even if no step saw it
        bad = active & ~(np.isfinite(out[:, 0]) & np.isfinite(g).all(axis=(1, 2)))
        status[bad], stopped_at[bad], active[bad] = DIVERGED, t, False

    threads = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, B)))  # a batch smaller than the pool
    try:
        with single_threaded_blas(), progress(cfg0.train.steps - t0, quiet) as bar:
            record(0, t0)
            k = 1
            t = t0
            chunk = _chunk(runs, engine, widths, int(np.diff(steps).max(initial=1)))
            while k < S and active.any():
                nsteps = min(chunk, int(steps[k]) - t)
                # a stopped run draws nothing (k = 0 consumes no random numbers)
                draws = [draw_inputs(r.params[0], r.rng, t, nsteps if a else 0, n, m, w) if s
                         else none for r, w, a, s in zip(runs, widths, active, stochastic)]
                done, st = batch.advance(nsteps, *zip(*draws), active)
                stopped_at[active] += done[active]
                status[active] = st[active]
                active &= st == RUNNING
                t += nsteps
                bar.update(nsteps)
                if t == steps[k]:
                    record(k, t)
                    k += 1
                if interrupt.requested() and k < S:
                    if t != steps[k - 1]:
                        steps[k] = t
                        record(k, t)
                        k += 1
                    status[active] = INTERRUPTED
                    steps, metrics, gamma, summary = (steps[:k], metrics[:, :k], gamma[:, :k],
                                                      summary[:, :k])
                    rho = None if rho is None else rho[:, :k]
                    residual = None if residual is None else residual[:, :k]
                    readout = None if readout is None else readout[:, :k]
                    S = k
            for kk in range(k, S):  # every run stopped early: later records repeat the last
                record(kk, int(steps[kk]))
    finally:
        numba.set_num_threads(threads)
    _nan_after_divergence(steps, status, stopped_at, metrics, gamma, rho, summary, residual,
                          readout)
    state = {name: np.array(v, copy=True) for name, v in batch.get_state().items()}
    return Records(steps, metrics, gamma, rho, summary, residual, readout, status, stopped_at,
                   state,
                   [r.rng_state() for r in runs],
                   advice + _warnings(runs, metrics, status, emit=warn))


def _nan_after_divergence(steps, status, stopped_at, *arrays):
    """Every record at or after a run's divergence is NaN (errors and margins included)."""
    dead = (status == DIVERGED)[:, None] & (steps[None, :] >= stopped_at[:, None])
    for arr in arrays:
        if arr is not None:
            arr[dead] = np.nan


#: The fit warning's text after its count (so :func:`join` can count it again over blocks).
_FIT_WARNING = "runs end with training loss"


def _warnings(runs, metrics, status, emit: bool = True) -> list:
    """Warn (once, stderr) about runs that end far from fitting their training data."""
    if runs[0].cfg.train.steps < 100:   # a probe of a few steps is not meant to fit
        return []
    finished = status == RUNNING
    with np.errstate(invalid="ignore"):
        first, last = metrics[:, 0, 0], metrics[:, -1, 0]
        far = finished & (last > 0.1) & (last > 0.5 * first)
    texts = []
    if far.any():
        texts.append(f"{int(far.sum())} of {len(runs)} {_FIT_WARNING} > 0.1 and "
                     "more than half its initial value: far from converged (more train.steps, "
                     "or a larger train.lr within η ≲ 1/(σ_p² d))")
    for text in texts if emit else ():
        warnings.warn(text, SignoiseWarning, stacklevel=3)
    return texts


def join(recs: list, runs: list) -> Records:
    """One :class:`Records` of consecutive blocks of runs (each from :func:`run` with
    ``warn=False``), emitting their warnings once: the advice of every block (each text once)
    and the fit warning counted over all runs. A block interrupted mid-schedule has a record at
    the step it stopped and none after; the joined records lie on the union of the blocks'
    steps, NaN where a block has no record."""
    steps = np.unique(np.concatenate([r.steps for r in recs]))

    def stack(name):
        parts = [getattr(r, name) for r in recs]
        if parts[0] is None:
            return None
        out = np.full((sum(p.shape[0] for p in parts), steps.size) + parts[0].shape[2:], np.nan)
        a = 0
        for r, p in zip(recs, parts):
            out[a:a + p.shape[0], np.searchsorted(steps, r.steps)] = p
            a += p.shape[0]
        return out

    metrics = stack("metrics")
    status = np.concatenate([r.status for r in recs])
    texts = list(dict.fromkeys(t for r in recs for t in r.warnings
                               if _FIT_WARNING not in t))
    texts += _warnings(runs, metrics, status, emit=False)
    for text in texts:
        warnings.warn(text, SignoiseWarning, stacklevel=3)
    return Records(steps, metrics, stack("gamma"), stack("rho"), stack("rho_summary"),
                   stack("residual"), stack("readout"), status,
                   np.concatenate([r.stopped_at for r in recs]),
                   {k: np.concatenate([r.state[k] for r in recs]) for k in recs[0].state},
                   [s for r in recs for s in r.rng_states], texts)


def progress(total, quiet, unit="step"):
    """A tqdm bar on a terminal; nothing when piped or quiet."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, disable=quiet or not sys.stderr.isatty(), leave=False,
                smoothing=0.1, dynamic_ncols=True)


__all__ = [
    "INTERRUPTED",
    "SHAPE_KEYS",
    "STATUS",
    "Labels",
    "Records",
    "Run",
    "check_shared",
    "join",
    "keep_labels",
    "make_batch",
    "prepare",
    "prepare_many",
    "progress",
    "rho_summaries",
    "run",
    "schedule",
]
