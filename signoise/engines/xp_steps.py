"""The model and every step rule of the array-API engine (model.py + steps.py with a run axis).

:class:`XPModel` holds the array expressions; :class:`signoise.engines.xp.XPBatch` holds the
state and drives them. Shapes: H, Q (B, 2, m, n, 2) as in model.py with a leading run axis;
per-run parameters are columns (B,) broadcast by :meth:`XPModel._b`. Each method names the
Numba function it mirrors (SPEC §2, §4, §5).
"""

from __future__ import annotations


class XPModel:
    """Array-API maths of the two-layer CNN in pre-activation form; needs ``xp``, ``dtype``,
    ``B``, ``n``, the per-run columns ``q``, ``a``, ``use_bias``, the inputs ``G``, ``yt``,
    ``y``, ``Z0``, ``F`` and ``K``, ``P`` (from :meth:`_patch_gram`), set by the subclass."""

    # -- the model (model.py) -------------------------------------------------------------
    def _b(self, v, nd):
        """A per-run column (B,) broadcast against an array of ``nd`` dimensions."""
        return self.xp.reshape(v, (self.B,) + (1,) * (nd - 1))

    def _act(self, H, order):
        """σ, σ' or σ'' (order 0, 1, 2) of max(0, z)^q, zero at z ≤ 0 (and σ'' for q = 1)."""
        xp = self.xp
        q = self._b(self.q, H.ndim)
        pos = H > 0
        z = xp.where(pos, H, xp.ones_like(H))          # no 0 ** negative
        if order == 0:
            v = z ** q
        elif order == 1:
            v = q * z ** (q - 1.0)
        else:
            v = q * (q - 1.0) * z ** (q - 2.0)
        return xp.where(pos, v, xp.zeros_like(H))

    def _cj(self, nd):
        """c_j = (+a, −a) shaped (B, 2, 1, ...)."""
        xp = self.xp
        a = self._b(self.a, nd)
        sign = xp.reshape(xp.asarray([1.0, -1.0], dtype=self.dtype), (1, 2) + (1,) * (nd - 2))
        return a * sign

    def _outputs(self, H):
        """f (B, n) = a Σ_{r,p} σ(H_{+}) − a Σ_{r,p} σ(H_{−})."""
        xp = self.xp
        acc = xp.sum(xp.sum(self._act(H, 0), axis=-1), axis=2)   # (B, 2, n)
        a = self._b(self.a, 2)
        return a * acc[:, 0, :] + (-a) * acc[:, 1, :]

    def _logistic(self, z):
        """ℓ, ℓ', ℓ'' of log(1 + e^{−z}) at full relative precision for every z (model.logistic)."""
        xp = self.xp
        e = xp.exp(-xp.abs(z))
        l1p = xp.log1p(e)
        nonneg = z >= 0
        loss = xp.where(nonneg, l1p, -z + l1p)
        d1 = xp.where(nonneg, -e / (1.0 + e), -1.0 / (1.0 + e))
        d2 = e / ((1.0 + e) * (1.0 + e))
        return loss, d1, d2

    def _gd_coef(self, H, y, d1, omega):
        """Q = ω_i ℓ'_i y_i c_j σ'(H) (model.gd_coef)."""
        u = (omega * d1 * y)[:, None, None, :, None] * self._cj(5)
        return u * self._act(H, 1)

    def _delta(self, Q):
        """dH = Σ_t Q[., t] K[t, .] (model.delta_preacts)."""
        xp = self.xp
        B, _, m, n, _ = Q.shape
        return xp.reshape(xp.reshape(Q, (B, 2 * m, 2 * n)) @ self.K, Q.shape)

    def _fdot(self, x, z):
        return self.xp.sum(self.xp.reshape(x * z, (self.B, -1)), axis=1)

    def _example_sq(self, S1):
        """T_i = a² Σ_{j,r} σ'ᵀ P_i σ' (model.example_sq), from S1 = σ'(H)."""
        xp = self.xp
        P = self.P
        s0, s1 = S1[..., 0], S1[..., 1]
        t = (s0 * s0 * P[:, None, None, :, 0, 0] + 2.0 * s0 * s1 * P[:, None, None, :, 0, 1]
             + s1 * s1 * P[:, None, None, :, 1, 1])
        return self._b(self.a, 2) ** 2 * xp.sum(xp.sum(t, axis=1), axis=1)

    def _patch_gram(self):
        """K[2i+p, 2k+p'] = ⟨x_i^(p), x_k^(p')⟩ (+1 with a bias) and its 2×2 diagonal blocks P."""
        xp = self.xp
        G, yt, B, n = self.G, self.yt, self.B, self.n
        e = self._b(self.use_bias, 3)
        g00 = self._b(G[:, 0, 0], 3)
        k00 = yt[:, :, None] * yt[:, None, :] * g00 + e
        k01 = yt[:, :, None] * G[:, None, 0, 1:] + e
        k10 = yt[:, None, :] * G[:, 1:, 0:1] + e
        k11 = G[:, 1:, 1:] + e
        top = xp.stack([k00, k01], axis=-1)                  # (B, i, k, p')
        bot = xp.stack([k10, k11], axis=-1)
        K4 = xp.stack([top, bot], axis=2)                    # (B, i, p, k, p')
        K = xp.reshape(K4, (B, 2 * n, 2 * n))
        eye = xp.eye(n, dtype=self.dtype)[None, :, None, :, None]
        P = xp.sum(K4 * eye, axis=3)                         # (B, i, p, p')
        return K, P

    def _preacts(self, beta, bias):
        """H (B, 2, m, n, 2) from Z = Z0 + β G (gram.preacts); also Z."""
        xp = self.xp
        B, _, m, k = beta.shape
        Z = self.Z0 + xp.reshape(xp.reshape(beta, (B, 2 * m, k)) @ self.G, beta.shape)
        b = bias[..., None]
        h0 = self.yt[:, None, None, :] * Z[..., 0:1] + b
        h1 = Z[..., 1:] + b
        return xp.stack([h0, h1], axis=-1), Z

    # -- one step (steps.step_coef) -------------------------------------------------------
    def _grad_at(self, H, ys, omega):
        f = self._outputs(H)
        _, d1, _ = self._logistic(ys * f)
        return self._gd_coef(H, ys, d1, omega)

    def _step_coef(self, H, ysign, omega_in, dHn):
        xp, name, th = self.xp, self.name, self.theta
        n = self.n
        f = self._outputs(H)
        loss, d1, d2 = self._logistic(self.y * f)
        L = xp.sum(loss, axis=1) / n
        ys = self.y * ysign if ysign is not None else self.y
        omega = omega_in if omega_in is not None else xp.full((self.B, n), 1.0 / n, dtype=self.dtype)
        if name == "lpg":
            omega = self._lpg_weights(loss)
        if name == "label_noise_gd":
            _, d1, d2 = self._logistic(ys * f)
        if name in ("noisy_eval", "anti_pgd"):
            return L, self._grad_at(H + dHn, ys, omega)
        if name == "pegr":
            return L, self._pegr_coef(H, ys, d1, d2, omega, 0.5 * th["lam"])
        Q = self._gd_coef(H, ys, d1, omega)
        col = lambda v: self._b(v, 5)  # noqa: E731
        if name == "flooding":
            Q = xp.where(col(L < th["level"]), -Q, Q)
        elif name == "clip":
            norm = xp.sqrt(self._fdot(Q, self._delta(Q)))
            c = th["max_norm"]
            scale = xp.where(norm > c, c / xp.where(norm > c, norm, xp.ones_like(norm)), 1.0)
            Q = xp.where(col(norm > c), col(scale) * Q, Q)
        elif name == "gr":
            Q = Q + self._hvp_coef(H, self._delta(Q), ys, d1, d2, omega, th["lam"])
        elif name in ("sam", "usam", "fdgr"):
            dH = self._delta(Q)
            if name == "fdgr":
                lam, eps, scheme = th["lam"], th["eps"], th["scheme"]
                r = xp.where(scheme == 1.0, -eps, eps)
            elif name == "sam":
                norm = xp.sqrt(self._fdot(Q, dH))
                safe = xp.where(norm > 0.0, norm, xp.ones_like(norm))
                r = xp.where(norm > 0.0, th["rho"] / safe, xp.zeros_like(norm))
            else:
                r = th["rho"]
            Qs = self._grad_at(H + col(r) * dH, ys, omega)
            if name != "fdgr":
                return L, Qs
            lam, eps, scheme = col(lam), col(eps), col(scheme)
            fwd = (1.0 - lam / eps) * Q + (lam / eps) * Qs
            bwd = (1.0 + lam / eps) * Q + (-lam / eps) * Qs
            Qm = self._grad_at(H + (-eps) * dH, ys, omega)
            ctr = Q + (lam / (2.0 * eps)) * (Qs + (-1.0) * Qm)
            Q = xp.where(scheme == 0.0, fwd, xp.where(scheme == 1.0, bwd, ctr))
        return L, Q

    def _lpg_weights(self, loss):
        """ω_i = (1 + α_{y_i}(t))/n, α_c(t) = α_c + adapt (L_c/L − 1) (steps._lpg_weights)."""
        xp, th, n = self.xp, self.theta, self.n
        pos = self.y > 0
        total = xp.sum(loss, axis=1) / n
        zero = xp.zeros_like(loss)
        sums = [xp.sum(xp.where(pos, loss, zero), axis=1), xp.sum(xp.where(pos, zero, loss), axis=1)]
        cnts = [xp.sum(xp.where(pos, 1.0 + zero, zero), axis=1),
                xp.sum(xp.where(pos, zero, 1.0 + zero), axis=1)]
        alphas = []
        for c, base in enumerate((th["alpha_pos"], th["alpha_neg"])):
            ok = (th["adapt"] != 0.0) & (cnts[c] > 0) & (total > 0.0)
            mean = sums[c] / xp.where(cnts[c] > 0, cnts[c], 1.0) / xp.where(ok, total, 1.0)
            alphas.append(xp.where(ok, base + th["adapt"] * (mean - 1.0), base))
        alpha = xp.where(pos, alphas[0][:, None], alphas[1][:, None])
        return (1.0 + alpha) / n

    def _pegr_coef(self, H, y, d1, d2, omega, scale):
        """GD part + scale · ∇ Σ ω_i ‖∇ℓ_i‖² in closed form (model.pegr_coef)."""
        P, cj = self.P, self._cj(5)
        S1, S2 = self._act(H, 1), self._act(H, 2)
        Q = (omega * d1 * y)[:, None, None, :, None] * cj * S1
        a2 = self._b(self.a, 2) ** 2
        T = self._example_sq(S1) / a2
        w = self._b(scale, 2) * omega
        c1 = (w * 2.0 * d1 * d2 * a2 * T * y)[:, None, None, :, None]
        c2 = (w * 2.0 * d1 * d1 * a2)[:, None, None, :, None]
        s0, s1 = S1[..., 0:1], S1[..., 1:2]
        Pb = P[:, None, None, :, :, :]                        # (B,1,1,n,p,p')
        PS = Pb[..., 0] * s0 + Pb[..., 1] * s1                # Σ_p' P[p,p'] σ'_p'
        return Q + (cj * c1 * S1 + c2 * S2 * PS)

    def _hvp_coef(self, H, dH, y, d1, d2, omega, scale):
        """scale · patch coefficients of ∇²(Σ ω_i ℓ_i) v (model.hvp_coef)."""
        xp, cj = self.xp, self._cj(5)
        S1 = self._act(H, 1)
        df = xp.sum(xp.sum(xp.sum(cj * S1 * dH, axis=-1), axis=2), axis=1)   # (B, n)
        u = (self._b(scale, 2) * omega * y)[:, None, None, :, None] * cj
        inner = ((d2 * y * df)[:, None, None, :, None] * S1
                 + d1[:, None, None, :, None] * self._act(H, 2) * dH)
        return u * inner

    def _noise_preacts(self, eps):
        """⟨ζ, x_i^(p)⟩ (+ bias noise) from eps (B, 2, m, n+2) (gram.noise_preacts)."""
        xp = self.xp
        B, _, m, width = eps.shape
        k = width - 1
        u = xp.reshape(xp.reshape(eps[..., :k], (B, 2 * m, k)) @ xp.matrix_transpose(self.F),
                       (B, 2, m, k))
        b = eps[..., k:] * self._b(self.use_bias, 4)
        return xp.stack([self.yt[:, None, None, :] * u[..., 0:1] + b, u[..., 1:] + b], axis=-1)

    def _apply(self, Q, scale):
        """(β, bias) + scale · coefficients of Σ Q x (gram.apply_coef)."""
        xp = self.xp
        s = xp.sum(Q[..., 0] * self.yt[:, None, None, :], axis=-1)
        dbeta = xp.concat([s[..., None], Q[..., 1]], axis=-1)
        sb = xp.sum(Q[..., 0] + Q[..., 1], axis=-1)
        sc = self._b(scale, 3)
        beta = self.beta + self._b(scale, 4) * dbeta
        bias = xp.where(self._b(self.use_bias, 3) != 0.0, self.bias + sc * sb, self.bias)
        return beta, bias

    def _finite(self, x):
        xp = self.xp
        return xp.all(xp.reshape(xp.isfinite(x), (self.B, -1)), axis=1)
