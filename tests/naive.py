"""Slow, obvious reference implementations: plain Python loops over j, r, i, p (SPEC §2–4).

Nothing here is shared with the package beyond the data arrays of a Problem.
"""

import math

import numpy as np


def act(z, q):
    return max(z, 0.0) ** q


def dact(z, q):
    return q * z ** (q - 1) if z > 0 else 0.0


def patches(prob, i):
    """The two patches of training example i: signal ỹ_i μ, noise ξ_i."""
    return [prob.y_true[i] * prob.mu, prob.xi[i]]


def network(W, b, x_patches, q, a):
    """f(W, x) = a Σ_r Σ_p σ(⟨w_{+1,r}, x_p⟩ + b) − a Σ_r Σ_p σ(⟨w_{−1,r}, x_p⟩ + b)."""
    total = 0.0
    for j, sign in ((0, 1.0), (1, -1.0)):
        for r in range(W.shape[1]):
            for x in x_patches:
                total += sign * a * act(float(np.dot(W[j, r], x)) + b[j, r], q)
    return total


def loss_fn(z):
    return math.log1p(math.exp(-z)) if z > -30 else -z + math.log1p(math.exp(z))


def train_loss(W, b, prob, q, a):
    n = prob.xi.shape[0]
    return sum(loss_fn(prob.y[i] * network(W, b, patches(prob, i), q, a)) for i in range(n)) / n


def grad(W, b, prob, q, a, omega=None, y=None):
    """∇ of Σ_i ω_i ℓ(y_i f(x_i)) w.r.t. (W, b), per neuron (SPEC §2); ω = 1/n, y observed
    by default."""
    n = prob.xi.shape[0]
    omega = np.full(n, 1.0 / n) if omega is None else omega
    y = prob.y if y is None else y
    gW = np.zeros_like(W)
    gb = np.zeros_like(b)
    for i in range(n):
        xs = patches(prob, i)
        margin = y[i] * network(W, b, xs, q, a)
        # ℓ'(z) = −1/(1 + e^z), written so that no exponential overflows
        lprime = -math.exp(-margin) / (1.0 + math.exp(-margin)) if margin > 0 else \
            -1.0 / (1.0 + math.exp(margin))
        for j, sign in ((0, 1.0), (1, -1.0)):
            for r in range(W.shape[1]):
                for x in xs:
                    s = dact(float(np.dot(W[j, r], x)) + b[j, r], q)
                    gW[j, r] += omega[i] * lprime * y[i] * sign * a * s * x
                    gb[j, r] += omega[i] * lprime * y[i] * sign * a * s
    return gW, gb


def gd_step(W, b, prob, q, a, lr, use_bias=False):
    """One GD step on L_S."""
    gW, gb = grad(W, b, prob, q, a)
    return W - lr * gW, (b - lr * gb) if use_bias else b


def gd(prob, q, a, lr, steps, use_bias=False):
    """``steps`` GD steps from (w0, b0); returns the final (W, b)."""
    W, b = prob.w0.copy(), prob.b0.copy()
    for _ in range(steps):
        W, b = gd_step(W, b, prob, q, a, lr, use_bias)
    return W, b


def decompose(W, prob):
    """γ_{j,r}, ρ_{j,r,i} from W − W0 = j γ μ/‖μ‖² + Σ_i ρ_i ξ_i/‖ξ_i‖² (least squares)."""
    V = np.vstack([prob.mu, prob.xi])
    m = W.shape[1]
    coef = np.linalg.lstsq(V.T, (W - prob.w0).reshape(2 * m, -1).T, rcond=None)[0].T
    coef = coef.reshape(2, m, -1)
    gamma = np.array([1.0, -1.0])[:, None] * coef[:, :, 0] * float(prob.mu @ prob.mu)
    rho = coef[:, :, 1:] * np.einsum("nd,nd->n", prob.xi, prob.xi)
    return gamma, rho


def example_grads(W, b, prob, q, a):
    """[(∇_W ℓ_i, ∇_b ℓ_i) for each i]."""
    n = prob.xi.shape[0]
    return [grad(W, b, prob, q, a, omega=np.eye(n)[i]) for i in range(n)]


def gr_objective(W, b, prob, q, a, lam, use_bias):
    """L_S + (λ/2)‖∇L_S‖² (Barrett & Dherin 2021)."""
    gW, gb = grad(W, b, prob, q, a)
    return train_loss(W, b, prob, q, a) + 0.5 * lam * (np.sum(gW ** 2) + use_bias * np.sum(gb ** 2))


def pegr_objective(W, b, prob, q, a, lam, use_bias):
    """L_S + (λ/2)(1/n) Σ_i ‖∇ℓ_i‖² (Meng, Cao, Zou 2023)."""
    gs = example_grads(W, b, prob, q, a)
    pen = np.mean([np.sum(gW ** 2) + use_bias * np.sum(gb ** 2) for gW, gb in gs])
    return train_loss(W, b, prob, q, a) + 0.5 * lam * pen


# A trained second layer (SPEC §2): f = Σ_j s_j Σ_r a_{j,r} Σ_p σ(⟨w_{j,r}, x_p⟩ + b_{j,r}) -----
def network_ro(W, b, A, x_patches, q):
    total = 0.0
    for j, sign in ((0, 1.0), (1, -1.0)):
        for r in range(W.shape[1]):
            for x in x_patches:
                total += sign * A[j, r] * act(float(np.dot(W[j, r], x)) + b[j, r], q)
    return total


def weighted_loss_ro(W, b, A, prob, q, omega=None, y=None):
    """Σ_i ω_i ℓ(y_i f(x_i)) with the per-filter readout A (ω = 1/n, observed y by default)."""
    n = prob.xi.shape[0]
    omega = np.full(n, 1.0 / n) if omega is None else omega
    y = prob.y if y is None else y
    return sum(omega[i] * loss_fn(y[i] * network_ro(W, b, A, patches(prob, i), q))
               for i in range(n))
