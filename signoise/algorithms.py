"""The training algorithms of SPEC §4 as data: a name, parameters with their rules, a code.

Every algorithm is GD plus one perturbation channel (STYLE.md): which examples weigh in (sgd,
msgd, label_noise_gd, lpg), where the gradient is evaluated (sam, usam, fdgr, noisy_eval,
anti_pgd), or what is added (gr, pegr, pgd, grad_noise); flooding and clip rescale it. The
engines interpret ``code`` and the parameter vector ``theta`` in one compiled kernel
(signoise/steps.py); at strength 0 every rule is GD bit for bit. Adding an algorithm means one
row here, its rule in steps.py, and one row in the shared test table (tests/test_algorithms.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .rules import Bool, Choice, ConfigError, Int, Real, reject

# Kernel codes (steps.py dispatches on them).
GD, SGD, MSGD, LABEL_NOISE_GD, GR, PEGR, FDGR, SAM, USAM, FLOODING, CLIP, NOISY_EVAL, \
    ANTI_PGD, PGD, GRAD_NOISE, LPG = range(16)

#: Length of the parameter vector handed to the kernels.
N_THETA = 4


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: its rule, default, meaning, and how it enters ``theta``."""

    rule: object
    default: object
    doc: str = ""
    encode: dict | None = None   # for string choices: value -> number


@dataclass(frozen=True)
class Algorithm:
    """A registered algorithm. ``params`` order is the order in ``theta``."""

    name: str
    code: int
    rule: str
    reference: str
    params: dict = field(default_factory=dict)
    stochastic: bool = False
    in_span: bool = True        # keeps w − w0 in span{μ, ξ_i} (runs on the gram engine)


ALGORITHMS: dict[str, Algorithm] = {}


def _register(**kw):
    ALGORITHMS[kw["name"]] = Algorithm(**kw)


_NONNEG = Real(0.0)
_S = Param(_NONNEG, 0.0, "noise standard deviation s (per weight)")
_LAM = Param(_NONNEG, 0.0, "regularisation strength λ")

_register(name="gd", code=GD, rule="W ← W − η ∇L_S(W)",
          reference="gradient descent (Cao et al. 2022, arXiv:2202.06526; Kou et al. 2023, arXiv:2303.04145)")
_register(name="sgd", code=SGD, stochastic=True,
          rule="W ← W − η (1/b) Σ_{i∈B_t} ∇ℓ_i, B_t a fresh uniform batch of b examples without replacement",
          reference="minibatch SGD",
          params={"b": Param(Int(1), 1, "batch size b (1 <= b <= n; b = n is GD)")})


_register(name="msgd", code=MSGD, stochastic=True,
          rule="W ← W − η (1/n) Σ_i m_i ∇ℓ_i, fresh mask of mean 1: bernoulli m_i = Bern(κ)/κ; "
               "fisher m_i = 1 + s ε_i; cov m_i = 1 + s(ε_i − ε̄), ε ~ N(0, I_n)",
          reference="Wu et al., On the noisy gradient descent that generalizes as SGD, ICML 2020, arXiv:1906.07405",
          params={"kind": Param(Choice(("bernoulli", "fisher", "cov")), "fisher", "mask family",
                                {"bernoulli": 0.0, "fisher": 1.0, "cov": 2.0}),
                  "keep": Param(Real(0.0, 1.0, low_open=True), 1.0, "keep probability κ (bernoulli)"),
                  "s": Param(_NONNEG, 0.0, "mask noise scale s (fisher, cov)")})
_register(name="label_noise_gd", code=LABEL_NOISE_GD, stochastic=True,
          rule="each step, flip each training label independently with probability p_step, then a GD step",
          reference="Huang et al., NeurIPS 2025",
          params={"p_step": Param(Real(0.0, 0.5, high_open=True), 0.0, "per-step flip probability")})
_register(name="gr", code=GR,
          rule="W ← W − η ∇[L_S + (λ/2)‖∇L_S‖²] = W − η (g + λ H g), Hessian-vector product in closed form",
          reference="Barrett & Dherin, Implicit gradient regularization, ICLR 2021; Karakida et al., ICML 2023",
          params={"lam": _LAM})
_register(name="pegr", code=PEGR,
          rule="W ← W − η ∇[L_S + (λ/2)(1/n) Σ_i ‖∇ℓ_i‖²], closed form (SPEC §4)",
          reference="Meng, Cao, Zou, Per-example gradient regularization, arXiv:2303.17940",
          params={"lam": _LAM})


_register(name="fdgr", code=FDGR,
          rule="forward: W ← W − η[(1−λ/ε) g + (λ/ε) ∇L(W + ε g)]; backward: W ← W − η[(1+λ/ε) g − "
               "(λ/ε) ∇L(W − ε g)]; central: W ← W − η[g + λ (∇L(W+εg) − ∇L(W−εg))/(2ε)]",
          reference="Karakida, Takase, Hayase, Osawa, Understanding gradient regularization in deep "
                    "learning: efficient finite-difference computation and implicit bias, ICML 2023, arXiv:2210.02720",
          params={"lam": _LAM,
                  "eps": Param(Real(0.0, low_open=True), 0.01, "finite-difference step ε > 0"),
                  "scheme": Param(Choice(("forward", "backward", "central")), "forward",
                                  "difference scheme", {"forward": 0.0, "backward": 1.0, "central": 2.0})})
_register(name="sam", code=SAM,
          rule="W ← W − η ∇L(W + ρ g/‖g‖)",
          reference="Foret et al., Sharpness-aware minimization, ICLR 2021",
          params={"rho": Param(_NONNEG, 0.0, "ascent radius ρ")})
_register(name="usam", code=USAM,
          rule="W ← W − η ∇L(W + ρ g) (unnormalised SAM; = forward fdgr with λ = ε = ρ)",
          reference="Andriushchenko & Flammarion, ICML 2022; Foret et al. 2021",
          params={"rho": Param(_NONNEG, 0.0, "ascent step ρ")})
_register(name="flooding", code=FLOODING,
          rule="GD on |L_S − b| + b: W ← W − η sign(L_S − b) g (ascent below the flood level b)",
          reference="Ishida et al., Do we need zero training loss after achieving zero training error?, ICML 2020",
          params={"level": Param(_NONNEG, 0.0, "flood level b")})
_register(name="clip", code=CLIP,
          rule="W ← W − η g min(1, c/‖g‖)",
          reference="gradient-norm clipping",
          params={"max_norm": Param(Real(0.0, low_open=True), 1e300, "clipping threshold c")})
_register(name="noisy_eval", code=NOISY_EVAL, stochastic=True,
          rule="W ← W − η ∇L(W + ζ), ζ ~ N(0, s² I) on every weight (biases too), fresh each step; "
               "layerwise: only the block W_{+1} (even steps) or W_{−1} (odd steps) is perturbed. "
               "The noise is not scaled by 1/√blocks (the authors' code does)",
          reference="Orvieto, Raj, Kersting, Bach, Explicit regularization in overparametrized models via "
                    "noise injection, AISTATS 2023, arXiv:2206.04613",
          params={"s": _S, "layerwise": Param(Bool(), False, "perturb one block per step, cyclically")})
_register(name="anti_pgd", code=ANTI_PGD, stochastic=True,
          rule="W ← W − η g + (ζ_{t+1} − ζ_t); signoise trains and records z_t = W_t − ζ_t, which "
               "follows z ← z − η ∇L(z + ζ_t) (W_t itself is z_t plus fresh N(0, s² I) noise)",
          reference="Orvieto et al., Anticorrelated noise injection for improved generalization, ICML 2022, arXiv:2202.02831",
          params={"s": _S})
_register(name="pgd", code=PGD, stochastic=True, in_span=False,
          rule="W ← W − η g + ζ_t, ζ_t ~ N(0, s² I) (leaves the span: weights engine only)",
          reference="perturbed gradient descent (Jin et al. 2017)",
          params={"s": _S})
_register(name="grad_noise", code=GRAD_NOISE, stochastic=True, in_span=False,
          rule="W ← W − η (g + ζ_t), ζ_t ~ N(0, s² I) (leaves the span: weights engine only)",
          reference="gradient noise (Neelakantan et al. 2015)",
          params={"s": _S})
_register(name="lpg", code=LPG,
          rule="ℓ'_i → (1 + α_{y_i}(t)) ℓ'_i with α_c(t) = α_c + adapt·(L_c(t)/L_S(t) − 1), L_c the "
               "mean loss of class c (observed labels); adapt = 0 keeps α fixed",
          reference="class-level logit-gradient perturbation in the spirit of Li 2026, arXiv:2605.29494 "
                    "(the paper's exact rule is not public: this is signoise's variant)",
          params={"alpha_pos": Param(Real(-1.0, low_open=True), 0.0, "α for class y = +1 (> −1)"),
                  "alpha_neg": Param(Real(-1.0, low_open=True), 0.0, "α for class y = −1 (> −1)"),
                  "adapt": Param(_NONNEG, 0.0, "adaptation rate")})

def check_against_config(name: str, params: dict, cfg) -> None:
    """Checks that need the rest of the config (e.g. b <= n)."""
    if name == "sgd" and params["b"] > cfg.data.n:
        reject("algorithm.b", params["b"], f"an integer in [1, data.n = {cfg.data.n}]")


def validate(name, params: dict) -> dict:
    """Validate ``params`` of algorithm ``name``; fill defaults. Raises with the key named."""
    algo = ALGORITHMS.get(name) if isinstance(name, str) else None
    if algo is None:
        reject("algorithm.name", name, "one of " + ", ".join(map(repr, ALGORITHMS)))
    out = {}
    for key, value in params.items():
        if key not in algo.params:
            known = ", ".join(algo.params) or "none"
            raise ConfigError(f"unknown key 'algorithm.{key}' for algorithm {name!r}: "
                              f"its parameters are {known}")
        out[key] = algo.params[key].rule(f"algorithm.{key}", value)
    for key, p in algo.params.items():
        out.setdefault(key, p.default)
    return out


def encode(name: str, params: dict) -> tuple[int, np.ndarray]:
    """Kernel code and parameter vector ``theta`` of a validated spec."""
    algo = ALGORITHMS[name]
    theta = np.zeros(N_THETA)
    for k, (key, p) in enumerate(algo.params.items()):
        value = params[key]
        theta[k] = p.encode[value] if p.encode else float(value)
    return algo.code, theta
