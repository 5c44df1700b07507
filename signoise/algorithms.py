"""The training algorithms of SPEC §4 as data: a name, named parameters with their
constraints, the update rule and its reference.

Every algorithm is GD plus one perturbation channel (STYLE.md): which examples weigh in (sgd,
msgd, label_noise_gd, lpg), where the gradient is evaluated (sam, usam, fdgr, noisy_eval,
anti_pgd), or what is added (gr, pegr, pgd, grad_noise); flooding and clip rescale it. Each
parameter names the field of the kernels' run record (:data:`RUN_DTYPE`) that carries it, so a
kernel reads ``prm.lam`` or ``prm.fd_scheme == FDScheme.CENTRAL``, never a numbered slot; one
field has one meaning (sam's ``rho`` is the ``radius``, msgd's ``s`` the ``mask_scale``, the
noise algorithms' ``s`` the ``noise_std``). At strength 0 (the defaults) every rule is GD bit
for bit. Adding an algorithm means one :func:`_register` call here, its rule in steps.py and one
row in the shared test table (tests/test_algorithms.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from .constraints import Bool, Choice, Int, Real, reject

# Kernel codes (steps.py dispatches on them).
GD, SGD, MSGD, LABEL_NOISE_GD, GR, PEGR, FDGR, SAM, USAM, FLOODING, CLIP, NOISY_EVAL, \
    ANTI_PGD, PGD, GRAD_NOISE, LPG = range(16)


class MaskKind(IntEnum):
    """msgd's mask family (Wu et al. 2020)."""

    BERNOULLI = 0
    FISHER = 1
    COV = 2


class FDScheme(IntEnum):
    """fdgr's finite-difference scheme (Karakida et al. 2023)."""

    FORWARD = 0
    BACKWARD = 1
    CENTRAL = 2


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: its constraint, default, meaning and the run-record field that
    carries it to the kernels (``field``; an ``enum`` parameter is stored as its code)."""

    constraint: object
    default: object
    doc: str = ""
    field: str = ""
    enum: type | None = None

    def encode(self, value):
        """The value as the kernels read it."""
        return self.enum[value.upper()] if self.enum is not None else value

    @property
    def dtype(self):
        if self.enum is not None or isinstance(self.constraint, Int):
            return np.int64
        return np.bool_ if isinstance(self.constraint, Bool) else np.float64


def _choice(enum, default, doc, field):
    """A string parameter whose allowed values are the lower-case names of ``enum``."""
    return Param(Choice(tuple(e.name.lower() for e in enum)), default, doc, field, enum)


@dataclass(frozen=True)
class Algorithm:
    """A registered algorithm: its kernel code, update rule (text), reference and parameters."""

    name: str
    code: int
    update: str
    reference: str
    params: dict = field(default_factory=dict)
    stochastic: bool = False
    in_span: bool = True        # keeps w − w0 in span{μ, ξ_i} (runs on the gram engine)


ALGORITHMS: dict[str, Algorithm] = {}


def _register(**kw):
    ALGORITHMS[kw["name"]] = Algorithm(**kw)


_NONNEG = Real(0.0)
_NOISE = Param(_NONNEG, 0.0, "noise standard deviation s (per weight)", "noise_std")
_LAM = Param(_NONNEG, 0.0, "regularisation strength λ", "lam")

_register(name="gd", code=GD, update="W ← W − η ∇L_S(W)",
          reference="gradient descent (Cao et al. 2022, arXiv:2202.06526; Kou et al. 2023, arXiv:2303.04145)")
_register(name="sgd", code=SGD, stochastic=True,
          update="W ← W − η (1/b) Σ_{i∈B_t} ∇ℓ_i, B_t a fresh uniform batch of b examples without replacement",
          reference="minibatch SGD",
          params={"b": Param(Int(1, optional=True), None,
                             "batch size b (1 <= b <= n; default n, which is GD)", "batch_size")})
_register(name="msgd", code=MSGD, stochastic=True,
          update="W ← W − η (1/n) Σ_i m_i ∇ℓ_i, fresh mask of mean 1: bernoulli m_i = Bern(κ)/κ; "
                 "fisher m_i = 1 + s ε_i; cov m_i = 1 + s(ε_i − ε̄), ε ~ N(0, I_n)",
          reference="Wu et al., On the noisy gradient descent that generalizes as SGD, ICML 2020, arXiv:1906.07405",
          params={"kind": _choice(MaskKind, "fisher", "mask family", "mask_kind"),
                  "keep": Param(Real(0.0, 1.0, low_open=True), 1.0, "keep probability κ (bernoulli)",
                                "keep"),
                  "s": Param(_NONNEG, 0.0, "mask noise scale s (fisher, cov)", "mask_scale")})
_register(name="label_noise_gd", code=LABEL_NOISE_GD, stochastic=True,
          update="each step, flip each training label independently with probability p_step, then a GD step",
          reference="Huang et al., NeurIPS 2025",
          params={"p_step": Param(Real(0.0, 0.5, high_open=True), 0.0, "per-step flip probability",
                                  "p_step")})
_register(name="gr", code=GR,
          update="W ← W − η ∇[L_S + (λ/2)‖∇L_S‖²] = W − η (g + λ H g), Hessian-vector product in closed form",
          reference="Barrett & Dherin, Implicit gradient regularization, ICLR 2021; Karakida et al., ICML 2023",
          params={"lam": _LAM})
_register(name="pegr", code=PEGR,
          update="W ← W − η ∇[L_S + (λ/2)(1/n) Σ_i ‖∇ℓ_i‖²], closed form (SPEC §4)",
          reference="Meng, Cao, Zou, Per-example gradient regularization, arXiv:2303.17940",
          params={"lam": _LAM})
_register(name="fdgr", code=FDGR,
          update="forward: W ← W − η[(1−λ/ε) g + (λ/ε) ∇L(W + ε g)]; backward: W ← W − η[(1+λ/ε) g − "
                 "(λ/ε) ∇L(W − ε g)]; central: W ← W − η[g + λ (∇L(W+εg) − ∇L(W−εg))/(2ε)]",
          reference="Karakida, Takase, Hayase, Osawa, Understanding gradient regularization in deep "
                    "learning: efficient finite-difference computation and implicit bias, ICML 2023, arXiv:2210.02720",
          params={"lam": _LAM,
                  "eps": Param(Real(0.0, low_open=True), 0.01, "finite-difference step ε > 0",
                               "fd_step"),
                  "scheme": _choice(FDScheme, "forward", "difference scheme", "fd_scheme")})
_register(name="sam", code=SAM,
          update="W ← W − η ∇L(W + ρ g/‖g‖)",
          reference="Foret et al., Sharpness-aware minimization, ICLR 2021",
          params={"rho": Param(_NONNEG, 0.0, "ascent radius ρ", "radius")})
_register(name="usam", code=USAM,
          update="W ← W − η ∇L(W + ρ g) (unnormalised SAM; = forward fdgr with λ = ε = ρ)",
          reference="Andriushchenko & Flammarion, ICML 2022; Foret et al. 2021",
          params={"rho": Param(_NONNEG, 0.0, "ascent step ρ", "radius")})
_register(name="flooding", code=FLOODING,
          update="GD on |L_S − b| + b: W ← W − η sign(L_S − b) g (ascent below the flood level b)",
          reference="Ishida et al., Do we need zero training loss after achieving zero training error?, ICML 2020",
          params={"level": Param(_NONNEG, 0.0, "flood level b", "flood_level")})
_register(name="clip", code=CLIP,
          update="W ← W − η g min(1, c/‖g‖)",
          reference="gradient-norm clipping",
          params={"max_norm": Param(Real(0.0, low_open=True), 1e300, "clipping threshold c",
                                    "max_norm")})
_register(name="noisy_eval", code=NOISY_EVAL, stochastic=True,
          update="W ← W − η ∇L(W + ζ), ζ ~ N(0, s² I) on every weight (biases too), fresh each step; "
                 "layerwise (with a trained readout): independent noise per layer, each layer's "
                 "gradient taken at a perturbation of that layer alone, ∇_W L(W + ζ_W, a) and "
                 "∇_a L(W, a + ζ_a); with a fixed readout there is one trained layer, so layerwise "
                 "equals all-weights noise. The noise is not scaled by 1/√layers (the authors' code "
                 "scales the all-weights noise by 1/√blocks)",
          reference="Orvieto, Raj, Kersting, Bach, Explicit regularization in overparametrized models via "
                    "noise injection, AISTATS 2023, arXiv:2206.04613",
          params={"s": _NOISE,
                  "layerwise": Param(Bool(), False, "each layer's gradient at noise on that layer only",
                                     "layerwise")})
_register(name="anti_pgd", code=ANTI_PGD, stochastic=True,
          update="W ← W − η g + (ζ_{t+1} − ζ_t); signoise trains and records z_t = W_t − ζ_t, which "
                 "follows z ← z − η ∇L(z + ζ_t) (W_t itself is z_t plus fresh N(0, s² I) noise)",
          reference="Orvieto et al., Anticorrelated noise injection for improved generalization, ICML 2022, arXiv:2202.02831",
          params={"s": _NOISE})
_register(name="pgd", code=PGD, stochastic=True, in_span=False,
          update="W ← W − η g + ζ_t, ζ_t ~ N(0, s² I) (leaves the span: weights engine only)",
          reference="perturbed gradient descent (Jin et al. 2017)",
          params={"s": _NOISE})
_register(name="grad_noise", code=GRAD_NOISE, stochastic=True, in_span=False,
          update="W ← W − η (g + ζ_t), ζ_t ~ N(0, s² I) (leaves the span: weights engine only)",
          reference="gradient noise (Neelakantan et al. 2015)",
          params={"s": _NOISE})
_register(name="lpg", code=LPG,
          update="ℓ'_i → (1 + α_{y_i}(t)) ℓ'_i with α_c(t) = α_c + adapt·(L_c(t)/L_S(t) − 1), L_c the "
                 "mean loss of class c (observed labels); adapt = 0 keeps α fixed",
          reference="class-level logit-gradient perturbation in the spirit of Li 2026, arXiv:2605.29494 "
                    "(the paper's exact rule is not public: this is signoise's variant)",
          params={"alpha_pos": Param(Real(-1.0, low_open=True), 0.0, "α for class y = +1 (> −1)",
                                     "alpha_pos"),
                  "alpha_neg": Param(Real(-1.0, low_open=True), 0.0, "α for class y = −1 (> −1)",
                                     "alpha_neg"),
                  "adapt": Param(_NONNEG, 0.0, "adaptation rate", "adapt")})

#: Rules that need σ'' (a Hessian term): undefined at 0⁺ for 1 < q < 2.
CURVATURE_CODES = (GR, PEGR)


class Readout(IntEnum):
    """How the kernels treat the second layer (``prm.readout``)."""

    SCALAR = 0       # ±a for every filter: the model of Cao et al., today's arithmetic
    PER_FILTER = 1   # a (2, m) array a_{j,r}, not trained (a random fixed readout)
    TRAINED = 2      # a_{j,r} trained with the filters


def _run_dtype():
    """The kernels' run record: the run's scalars, then every algorithm parameter by field."""
    fields = {"code": np.int64, "q": np.float64, "a": np.float64, "lr": np.float64,
              "loss_threshold": np.float64, "use_bias": np.bool_,
              "readout": np.int64}
    for algo in ALGORITHMS.values():
        for p in algo.params.values():
            if fields.setdefault(p.field, p.dtype) is not p.dtype:
                raise TypeError(f"record field {p.field!r} declared with two types")
    return np.dtype(list(fields.items()), align=True)


#: Structured dtype of one run's kernel parameters (a batch is a 1-D array of them).
RUN_DTYPE = _run_dtype()


def run_record(cfg) -> np.ndarray:
    """The kernel parameters of a validated config: a 1-element array of :data:`RUN_DTYPE`
    (a kernel reads ``prm[0].lam``; a batch concatenates them). Parameters of other
    algorithms stay 0; sgd's unset ``b`` is the full batch n."""
    rec = np.zeros(1, RUN_DTYPE)
    algo = ALGORITHMS[cfg.algorithm.name]
    rec["code"] = algo.code
    rec["q"] = cfg.model.q
    rec["a"] = cfg.model.readout_scale
    rec["lr"] = cfg.train.lr
    rec["loss_threshold"] = cfg.train.loss_threshold or 0.0
    rec["use_bias"] = cfg.model.bias
    rec["readout"] = (Readout.TRAINED if cfg.model.readout == "trainable" else
                      Readout.PER_FILTER if cfg.model.per_filter_readout else Readout.SCALAR)
    for key, p in algo.params.items():
        value = cfg.algorithm.params[key]
        rec[p.field] = cfg.data.n if (key == "b" and value is None) else p.encode(value)
    return rec


def check_against_config(name: str, params: dict, cfg) -> None:
    """Checks that need the rest of the config (e.g. b <= n, q >= 2 for curvature rules)."""
    if name == "sgd" and params["b"] is not None and params["b"] > cfg.data.n:
        reject("algorithm.b", params["b"], f"an integer in [1, data.n = {cfg.data.n}]")
    if ALGORITHMS[name].code in CURVATURE_CODES and 1.0 < cfg.model.q < 2.0:
        reject("model.q", cfg.model.q, f"1 or q >= 2 for algorithm {name!r} (its gradient "
               "needs σ''(z) = q(q−1) z^(q−2), unbounded as z → 0⁺ when 1 < q < 2)")


def validate(name, params: dict) -> dict:
    """Validate ``params`` of algorithm ``name``; fill defaults. Raises with the key named."""
    algo = ALGORITHMS.get(name) if isinstance(name, str) else None
    if algo is None:
        reject("algorithm.name", name, "one of " + ", ".join(map(repr, ALGORITHMS)))
    out = {}
    for key, value in params.items():
        if key not in algo.params:
            reject(f"algorithm.{key}", value, f"a parameter of algorithm {name!r}: "
                   f"{', '.join(algo.params) or 'it takes none'}")
        out[key] = algo.params[key].constraint(f"algorithm.{key}", value)
    for key, p in algo.params.items():
        out.setdefault(key, p.default)
    return out
