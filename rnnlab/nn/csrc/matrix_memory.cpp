// The matrix memories of ops/gated_delta_rule.py and ops/mlstm.py, chunkwise on the CPU, forward and backward.
//
// A task is one (batch row, head): it walks its chunks in order, carrying the state, and inside a chunk of L <= C
// steps works in matrix products (BLAS: the sgemm_/dgemm_ that torch's own build carries, called through weak
// symbols; plain loops where there is none). Forward keeps only the state at the start of every chunk
// ("bounds"); backward takes the chunks last to first, recomputes a chunk's products from its bound and takes
// them back. A last chunk shorter than C is computed at its own length: nothing is padded.
//
// Gated delta rule (q already scaled; rows of a chunk: Q, K (L, K), V (L, V); b = beta; G_r = g_1 + .. + g_r
// within the chunk, Gam_r = exp(G_r), tail_s = exp(G_L - G_s), D_rs = exp(G_r - G_s) for s <= r; S0 the state
// at the chunk's start (K, V)):
//
//   A   = strictly lower part of b_r D_rs (K K^T)_rs
//   U   = (I + A)^-1 R,   R = diag(b) V - diag(b Gam) K S0           the values written, corrected
//   P   = lower part (s <= r) of D_rs (Q K^T)_rs
//   O   = diag(Gam) Q S0 + P U
//   S_L = Gam_L S0 + K^T diag(tail) U
//
// and back, from dO and dS_L (the next chunk's dS0, or the last state's gradient):
//
//   dU  = P^T dO + diag(tail) K dS_L          dR = (I + A)^-T dU      dA = -dR U^T (strictly lower)
//   dQ  = diag(Gam) dO S0^T + (dO U^T o D) K  dV = diag(b) dR
//   dK  = (dO U^T o D)^T Q + (dKK + dKK^T) K - diag(b Gam) dR S0^T + diag(tail) U dS_L^T,  dKK = dA o b_r D
//   dS0 = Gam_L dS_L + Q^T diag(Gam) dO - K^T diag(b Gam) dR
//   and db, and dG from every place D, Gam and tail appear, dg its reversed cumulative sum.
//
// mLSTM (q already scaled, log f given; F_r = log f_1 + .. + log f_r within the chunk; (c0, n0, m0) the states
// at its start):
//
//   D_rs = F_r - F_s + i_s (s <= r)     m_r = max(F_r + m0, max_s D_rs)     W_rs = exp(D_rs - m_r)
//   P    = (Q K^T) o W (s <= r)         carried_r = exp(F_r + m0 - m_r)
//   h_r  = (carried_r (Q c0)_r + (P V)_r) / (max(|carried_r (Q n0)_r + sum_s P_rs|, exp(-m_r)) + eps)
//   end: last_s = F_L - F_s + i_s, m_L = max(F_L + m0, max_s last_s), w_s = exp(last_s - m_L),
//        keep = exp(F_L + m0 - m_L), c_L = keep c0 + K^T diag(w) V, n_L = keep n0 + K^T w
//
// backward through every one of these, the maxima included (a tie split as torch splits it: half to each side of
// a maximum of two, evenly among the equal entries of a row's max).

#include "common.h"


#include <algorithm>
#include <cmath>
#include <vector>

extern "C" {
// Fortran BLAS, as torch's MKL (or OpenBLAS) exports it; weak: null where the library has none.
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
            const int*, const double*, const int*, const double*, double*, const int*) __attribute__((weak));
}

namespace rnnlab {
namespace {

bool blas_wanted = true;  // set_blas(false): the plain loops, as where there is no BLAS (tested both ways)

// Row-major C (M, N) = alpha op(A) op(B) + beta C, op(A) (M, Kd); ta: A is stored (Kd, M). As column-major this is
// C^T = op(B)^T op(A)^T: BLAS's gemm with the operands swapped.
template <typename T>
void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t Kd, T alpha, const T* A, int64_t lda, const T* B,
        int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const char a = ta ? 'T' : 'N', b = tb ? 'T' : 'N';
  const int m = int(M), n = int(N), k = int(Kd), la = int(lda), lb = int(ldb), lc = int(ldc);
  if constexpr (std::is_same_v<T, float>) {
    if (sgemm_ && blas_wanted) return sgemm_(&b, &a, &n, &m, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
  } else {
    if (dgemm_ && blas_wanted) return dgemm_(&b, &a, &n, &m, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
  }
  for (int64_t i = 0; i < M; ++i) {  // no BLAS: the same product in loops
    T* row = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
    for (int64_t p = 0; p < Kd; ++p) {
      const T x = alpha * (ta ? A[p * lda + i] : A[i * lda + p]);
      if (tb) {
        for (int64_t j = 0; j < N; ++j) row[j] += x * B[j * ldb + p];
      } else {
        const T* brow = B + p * ldb;
        for (int64_t j = 0; j < N; ++j) row[j] += x * brow[j];
      }
    }
  }
}

// X (L, N) := (I + A)^-1 X, A (L, L) strictly lower (ld lda): forward substitution, a row at a time.
template <typename T> void solve_lower(const T* A, int64_t lda, T* X, int64_t L, int64_t N) {
  for (int64_t s = 0; s < L; ++s) {
    const T* xs = X + s * N;
    for (int64_t r = s + 1; r < L; ++r) {
      const T a = A[r * lda + s];
      T* xr = X + r * N;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) xr[j] -= a * xs[j];
    }
  }
}

// X (L, N) := (I + A)^-T X: back substitution.
template <typename T> void solve_upper_transposed(const T* A, int64_t lda, T* X, int64_t L, int64_t N) {
  for (int64_t s = L - 1; s >= 0; --s) {
    const T* xs = X + s * N;
    for (int64_t r = 0; r < s; ++r) {
      const T a = A[s * lda + r];
      T* xr = X + r * N;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) xr[j] -= a * xs[j];
    }
  }
}

// A short row copied in place (a call to memmove per row of 64 costs more than the copy).
template <typename T> inline void copy_row(const T* from, T* to, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) to[j] = from[j];
}

// ---------------------------------------------------------------------------------------------------------------
// Gated delta rule. q, k (B, T, H, K); v, o (B, T, H, V); g, beta (B, T, H); states (B, H, K, V); all contiguous.

template <typename T> struct Delta {
  const T *q, *k, *v, *g, *beta;
  int64_t B, T_, H, K, V, C;
  int64_t chunks() const { return (T_ + C - 1) / C; }
  int64_t row_k() const { return H * K; }
  int64_t row_v() const { return H * V; }
};

// One chunk's quantities, recomputed by backward from the chunk's start state. X holds the chunk's rows of K and
// then of Q, contiguous, so that products sharing an operand are one call: [K; Q] K^T gives K K^T and Q K^T.
template <typename T> struct DeltaChunk {
  int64_t C, K, V, L = 0;
  std::vector<T> G, gam, tail, b, X, KQ, D, A, KS, U;

  DeltaChunk(int64_t C, int64_t K, int64_t V)
      : C(C), K(K), V(V), G(C), gam(C), tail(C), b(C), X(2 * C * K), KQ(2 * C * C), D(C * C), A(C * C), KS(C * V),
        U(C * V) {}

  const T* k_rows() const { return X.data(); }       // (L, K)
  const T* q_rows() const { return X.data() + L * K; }  // (L, K)
  const T* KK() const { return KQ.data(); }           // (L, L), rows C apart
  const T* QK() const { return KQ.data() + L * C; }   // (L, L), rows C apart

  // Everything above of steps t0 .. t0 + L - 1 of the task's rows (q, k, v, g, beta pointing at its first row,
  // rows `rk`, `rv`, `rg` apart), from the chunk's start state S0: D (s <= r; 0 above), A, K S0 and U.
  void compute(const T* q, const T* k, const T* v, const T* g, const T* beta, int64_t rk, int64_t rv, int64_t rg,
               const T* S0) {
    T acc = 0;
    for (int64_t r = 0; r < L; ++r) {
      acc += g[r * rg];
      G[r] = acc, gam[r] = std::exp(acc), b[r] = beta[r * rg];
      copy_row(k + r * rk, X.data() + r * K, K);
      copy_row(q + r * rk, X.data() + (L + r) * K, K);
    }
    for (int64_t r = 0; r < L; ++r) {
      tail[r] = std::exp(G[L - 1] - G[r]);
      T* Dr = D.data() + r * C;
      const T Gr = G[r];
#pragma omp simd
      for (int64_t s = 0; s <= r; ++s) Dr[s] = std::exp(Gr - G[s]);
      std::fill(Dr + r + 1, Dr + L, T(0));
    }
    mm<T>(false, true, 2 * L, L, K, 1, X.data(), K, X.data(), K, 0, KQ.data(), C);
    mm<T>(false, false, L, V, K, 1, X.data(), K, S0, V, 0, KS.data(), V);
    for (int64_t r = 0; r < L; ++r) {
      const T *vr = v + r * rv, *ks = KS.data() + r * V, *Dr = D.data() + r * C, *kk = KQ.data() + r * C;
      const T br = b[r], scale = gam[r];
      T *u = U.data() + r * V, *Ar = A.data() + r * C;
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) u[j] = br * (vr[j] - scale * ks[j]);
#pragma omp simd
      for (int64_t s = 0; s < r; ++s) Ar[s] = br * Dr[s] * kk[s];
    }
    solve_lower(A.data(), C, U.data(), L, V);
  }
};

template <typename T>
void delta_forward_head(const Delta<T>& d, int64_t task, const T* s0, T* o, T* last, T* bounds) {
  const int64_t bi = task / d.H, h = task % d.H, K = d.K, V = d.V, C = d.C, rk = d.row_k(), rv = d.row_v();
  std::vector<T> S(K * V, T(0)), P(C * C), Ut(C * V);
  if (s0) std::copy(s0 + task * K * V, s0 + (task + 1) * K * V, S.begin());
  DeltaChunk<T> ch(C, K, V);
  for (int64_t c = 0; c < d.chunks(); ++c) {
    const int64_t t0 = c * C, L = std::min(d.T_ - t0, C);
    if (bounds) std::copy(S.begin(), S.end(), bounds + (task * d.chunks() + c) * K * V);
    const int64_t at = bi * d.T_ + t0;  // the chunk's first (batch, time) row
    const T *q = d.q + at * rk + h * K, *k = d.k + at * rk + h * K, *v = d.v + at * rv + h * V;
    const T *g = d.g + at * d.H + h, *beta = d.beta + at * d.H + h;
    ch.L = L;
    ch.compute(q, k, v, g, beta, rk, rv, d.H, S.data());
    T* Qg = ch.X.data() + L * K;  // the chunk's Q rows, scaled by gam in place: forward needs them no more
    for (int64_t r = 0; r < L; ++r) {
      const T *Dr = ch.D.data() + r * C, *qk = ch.QK() + r * C;
      T* Pr = P.data() + r * C;
#pragma omp simd
      for (int64_t s = 0; s < L; ++s) Pr[s] = qk[s] * Dr[s];
      for (int64_t j = 0; j < K; ++j) Qg[r * K + j] *= ch.gam[r];
      for (int64_t j = 0; j < V; ++j) Ut[r * V + j] = ch.tail[r] * ch.U[r * V + j];
    }
    T* out = o + at * rv + h * V;
    mm<T>(false, false, L, V, K, 1, Qg, K, S.data(), V, 0, out, rv);
    mm<T>(false, false, L, V, L, 1, P.data(), C, ch.U.data(), V, 1, out, rv);
    const T keep = ch.gam[L - 1];
    for (auto& x : S) x *= keep;
    mm<T>(true, false, K, V, L, 1, ch.k_rows(), K, Ut.data(), V, 1, S.data(), V);
  }
  std::copy(S.begin(), S.end(), last + task * K * V);
}

template <typename T>
void delta_backward_head(const Delta<T>& d, int64_t task, const T* bounds, const T* dO_all, const T* dlast, T* dq_all,
                         T* dk_all, T* dv_all, T* dg_all, T* dbeta_all, T* ds0) {
  const int64_t bi = task / d.H, h = task % d.H, K = d.K, V = d.V, C = d.C, rk = d.row_k(), rv = d.row_v();
  // Y = [dO; dU then dR] (2L, V); Z = Y U^T = [dP then dQK; dR U^T = -dA] (2L, L); W = Y S0^T (2L, K), then the
  // rows [gam Q; -b gam K] that take Y back into dS0
  std::vector<T> dS(K * V, T(0)), P(C * C), Y(2 * C * V), Z(2 * C * C), W(2 * C * K), KdS(C * V), dKK(C * C),
      tmp(C * K), dG(C), dgam(C), dtail(C), db(C);
  if (dlast) std::copy(dlast + task * K * V, dlast + (task + 1) * K * V, dS.begin());
  DeltaChunk<T> ch(C, K, V);
  for (int64_t c = d.chunks() - 1; c >= 0; --c) {
    const int64_t t0 = c * C, L = std::min(d.T_ - t0, C);
    const T* S0 = bounds + (task * d.chunks() + c) * K * V;
    const int64_t at = bi * d.T_ + t0;
    const T *q = d.q + at * rk + h * K, *k = d.k + at * rk + h * K, *v = d.v + at * rv + h * V;
    const T *g = d.g + at * d.H + h, *beta = d.beta + at * d.H + h, *dO_rows = dO_all + at * rv + h * V;
    T *dq = dq_all + at * rk + h * K, *dk = dk_all + at * rk + h * K, *dv = dv_all + at * rv + h * V;
    ch.L = L;
    ch.compute(q, k, v, g, beta, rk, rv, d.H, S0);
    const T *gam = ch.gam.data(), *tail = ch.tail.data(), *b = ch.b.data(), *Kr = ch.k_rows(), *Qr = ch.q_rows();
    T *dO = Y.data(), *dR = Y.data() + L * V;
    for (int64_t r = 0; r < L; ++r) {
      copy_row(dO_rows + r * rv, dO + r * V, V);
      const T *Dr = ch.D.data() + r * C, *qk = ch.QK() + r * C;
      T* Pr = P.data() + r * C;
#pragma omp simd
      for (int64_t s = 0; s < L; ++s) Pr[s] = qk[s] * Dr[s];
    }
    // dU = P^T dO + diag(tail) K dS_L; dtail_s = (K dS_L)_s . U_s
    mm<T>(true, false, L, V, L, 1, P.data(), C, dO, V, 0, dR, V);
    mm<T>(false, false, L, V, K, 1, Kr, K, dS.data(), V, 0, KdS.data(), V);
    for (int64_t s = 0; s < L; ++s) {
      T acc = 0;
      const T *kds = KdS.data() + s * V, *u = ch.U.data() + s * V;
      T* du = dR + s * V;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < V; ++j) acc += kds[j] * u[j], du[j] += tail[s] * kds[j];
      dtail[s] = acc;
    }
    solve_upper_transposed(ch.A.data(), C, dR, L, V);  // dU is dR now
    mm<T>(false, true, 2 * L, L, V, 1, Y.data(), V, ch.U.data(), V, 0, Z.data(), C);  // [dP; -dA]
    std::fill(dG.begin(), dG.begin() + L, T(0));
    std::fill(dgam.begin(), dgam.begin() + L, T(0));
    for (int64_t r = 0; r < L; ++r) {
      const T *Dr = ch.D.data() + r * C, *kk = ch.KK() + r * C, *qk = ch.QK() + r * C, *minus_dA = Z.data() + (L + r) * C;
      T *dP = Z.data() + r * C, *dkk = dKK.data() + r * C, *dGs = dG.data();
      const T br = b[r];
      T dbr = 0, dGr = 0;
#pragma omp simd reduction(+ : dbr, dGr)
      for (int64_t s = 0; s < r; ++s) {
        const T dA = -minus_dA[s];
        const T dD = dP[s] * qk[s] + dA * br * kk[s];
        dbr += dA * Dr[s] * kk[s];
        dkk[s] = dA * br * Dr[s];
        dP[s] *= Dr[s];  // dQK
        dGr += dD * Dr[s];
        dGs[s] -= dD * Dr[s];
      }
      dP[r] *= Dr[r];  // the diagonal: D = 1, no A there
      std::fill(dP + r + 1, dP + L, T(0));
      std::fill(dkk + r, dkk + L, T(0));
      dG[r] += dGr;
      db[r] = dbr;
    }
    for (int64_t r = 0; r < L; ++r)  // dKK + dKK^T
      for (int64_t s = 0; s < r; ++s) dKK[s * C + r] = dKK[r * C + s];
    const T* dQK = Z.data();
    // W = [dO S0^T; dR S0^T]; dQ = diag(gam) dO S0^T + dQK K, dgam_r += Q_r . (dO S0^T)_r
    mm<T>(false, true, 2 * L, K, V, 1, Y.data(), V, S0, V, 0, W.data(), K);
    for (int64_t r = 0; r < L; ++r) {
      T acc = 0;
      const T *w = W.data() + r * K, *qr = Qr + r * K;
      T* dqr = dq + r * rk;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < K; ++j) acc += qr[j] * w[j], dqr[j] = gam[r] * w[j];
      dgam[r] += acc;
    }
    mm<T>(false, false, L, K, L, 1, dQK, C, Kr, K, 1, dq, rk);
    // dK = dQK^T Q + (dKK + dKK^T) K - diag(b gam) dR S0^T + diag(tail) U dS_L^T
    mm<T>(true, false, L, K, L, 1, dQK, C, Qr, K, 0, dk, rk);
    mm<T>(false, false, L, K, L, 1, dKK.data(), C, Kr, K, 1, dk, rk);
    mm<T>(false, true, L, K, V, 1, ch.U.data(), V, dS.data(), V, 0, tmp.data(), K);
    for (int64_t r = 0; r < L; ++r) {
      const T *w = W.data() + (L + r) * K, *t = tmp.data() + r * K, down = b[r] * gam[r];
      T* dkr = dk + r * rk;
#pragma omp simd
      for (int64_t j = 0; j < K; ++j) dkr[j] += tail[r] * t[j] - down * w[j];
    }
    // dV, db, dgam through R = diag(b) V - diag(b gam) K S0
    for (int64_t r = 0; r < L; ++r) {
      T dot_v = 0, dot_ks = 0;
      const T *dr = dR + r * V, *vr = v + r * rv, *ks = ch.KS.data() + r * V;
      T* dvr = dv + r * rv;
#pragma omp simd reduction(+ : dot_v, dot_ks)
      for (int64_t j = 0; j < V; ++j) dvr[j] = b[r] * dr[j], dot_v += dr[j] * vr[j], dot_ks += dr[j] * ks[j];
      db[r] += dot_v - gam[r] * dot_ks;
      dgam[r] -= b[r] * dot_ks;
    }
    T carry = 0;
    for (int64_t j = 0; j < K * V; ++j) carry += S0[j] * dS[j];
    dgam[L - 1] += carry;
    for (int64_t r = 0; r < L; ++r) {
      dG[r] += dgam[r] * gam[r] - dtail[r] * tail[r];
      dG[L - 1] += dtail[r] * tail[r];
    }
    T acc = 0;
    for (int64_t r = L - 1; r >= 0; --r) {
      acc += dG[r];
      dg_all[(at + r) * d.H + h] = acc;
      dbeta_all[(at + r) * d.H + h] = db[r];
    }
    // dS0 = gam_L dS_L + [gam Q; -b gam K]^T [dO; dR]
    for (auto& x : dS) x *= gam[L - 1];
    for (int64_t r = 0; r < L; ++r)
      for (int64_t j = 0; j < K; ++j) W[r * K + j] = gam[r] * Qr[r * K + j], W[(L + r) * K + j] = -b[r] * gam[r] * Kr[r * K + j];
    mm<T>(true, false, K, V, 2 * L, 1, W.data(), K, Y.data(), V, 1, dS.data(), V);
  }
  if (ds0) std::copy(dS.begin(), dS.end(), ds0 + task * K * V);
}

void check_delta(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& g,
                 const at::Tensor& beta, int64_t chunk) {
  TORCH_CHECK(chunk > 0, "gated delta rule: chunk > 0");
  for (const auto* t : {&q, &k, &v, &g, &beta})
    TORCH_CHECK(t->is_contiguous() && t->device().is_cpu() && t->scalar_type() == q.scalar_type(),
                "gated delta rule: contiguous CPU tensors of one dtype");
  TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.dim() == 4 && v.sizes().slice(0, 3) == q.sizes().slice(0, 3) &&
              g.sizes() == q.sizes().slice(0, 3) && beta.sizes() == g.sizes(), "gated delta rule: shapes");
}

template <typename T> Delta<T> delta_of(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& g, const at::Tensor& beta, int64_t chunk) {
  return {q.data_ptr<T>(), k.data_ptr<T>(), v.data_ptr<T>(), g.data_ptr<T>(), beta.data_ptr<T>(),
          q.size(0), q.size(1), q.size(2), q.size(3), v.size(3), chunk};
}

// ---------------------------------------------------------------------------------------------------------------
// mLSTM. q, k (B, NH, S, DK); v, h (B, NH, S, DV); i, logf (B, NH, S); c (B, NH, DK, DV), n (B, NH, DK),
// m (B, NH, 1); all contiguous: a task's rows are consecutive.

template <typename T> struct Mlstm {
  const T *q, *k, *v, *i, *logf;
  int64_t tasks, S, K, V, C;
  T eps;
  int64_t chunks() const { return (S + C - 1) / C; }
  int64_t bound() const { return K * V + K + 1; }  // one chunk's (c, n, m)
};

// One chunk's quantities.
template <typename T> struct MlstmChunk {
  int64_t C, L = 0;
  std::vector<T> F, m, carried, qn, den, QK, D, W, P, Qn, w;
  std::vector<int64_t> inner_at;  // where each row's max of D is (its first; ties are found again by backward)
  T keep = 0;  // exp(F_L + m0 - m_L): what the chunk keeps of the states it started from

  explicit MlstmChunk(int64_t C)
      : C(C), F(C), m(C), carried(C), qn(C), den(C), QK(C * C), D(C * C), W(C * C), P(C * C), Qn(C), w(C),
        inner_at(C) {}

  void compute(const T* q, const T* k, const T* i, const T* logf, int64_t K, const T* n0, T m0, T eps) {
    T acc = 0;
    for (int64_t r = 0; r < L; ++r) acc += logf[r], F[r] = acc;
    mm<T>(false, true, L, L, K, 1, q, K, k, K, 0, QK.data(), C);
    mm<T>(false, false, L, 1, K, 1, q, K, n0, 1, 0, Qn.data(), 1);
    for (int64_t r = 0; r < L; ++r) {
      T* Dr = D.data() + r * C;
      for (int64_t s = 0; s <= r; ++s) Dr[s] = F[r] - F[s] + i[s];
      int64_t at = 0;
      for (int64_t s = 1; s <= r; ++s)
        if (Dr[s] > Dr[at]) at = s;
      inner_at[r] = at;
      m[r] = std::max(F[r] + m0, Dr[at]);
      carried[r] = std::exp(F[r] + m0 - m[r]);
      T sum = 0;
      for (int64_t s = 0; s <= r; ++s) {
        W[r * C + s] = std::exp(Dr[s] - m[r]);
        P[r * C + s] = QK[r * C + s] * W[r * C + s];
        sum += P[r * C + s];
      }
      for (int64_t s = r + 1; s < L; ++s) P[r * C + s] = 0;
      qn[r] = carried[r] * Qn[r] + sum;
      den[r] = std::max(std::abs(qn[r]), std::exp(-m[r])) + eps;
    }
    // the chunk's end is its last row: last_s = D[L-1, s], m_L = m[L-1], w_s = W[L-1, s]
    keep = carried[L - 1];
    for (int64_t s = 0; s < L; ++s) w[s] = W[(L - 1) * C + s];
  }
};

template <typename T> void mlstm_forward_head(const Mlstm<T>& d, int64_t task, const T* c0, const T* n0,
                                              const T* m0, T* h, T* c_last, T* n_last, T* m_last, T* bounds) {
  const int64_t K = d.K, V = d.V, C = d.C;
  std::vector<T> c(c0 + task * K * V, c0 + (task + 1) * K * V), n(n0 + task * K, n0 + (task + 1) * K), wv(C * V);
  T m = m0[task];
  MlstmChunk<T> ch(C);
  for (int64_t j = 0; j < d.chunks(); ++j) {
    const int64_t t0 = j * C, L = std::min(d.S - t0, C), at = task * d.S + t0;
    if (bounds) {
      T* kept = bounds + (task * d.chunks() + j) * d.bound();
      std::copy(c.begin(), c.end(), kept);
      std::copy(n.begin(), n.end(), kept + K * V);
      kept[K * V + K] = m;
    }
    const T *q = d.q + at * K, *k = d.k + at * K, *v = d.v + at * V;
    ch.L = L;
    ch.compute(q, k, d.i + at, d.logf + at, K, n.data(), m, d.eps);
    T* out = h + at * V;
    mm<T>(false, false, L, V, K, 1, q, K, c.data(), V, 0, out, V);  // Q c0
    for (int64_t r = 0; r < L; ++r)
      for (int64_t x = 0; x < V; ++x) out[r * V + x] *= ch.carried[r];
    mm<T>(false, false, L, V, L, 1, ch.P.data(), C, v, V, 1, out, V);
    for (int64_t r = 0; r < L; ++r)
      for (int64_t x = 0; x < V; ++x) out[r * V + x] /= ch.den[r];
    for (auto& x : c) x *= ch.keep;
    for (auto& x : n) x *= ch.keep;
    for (int64_t s = 0; s < L; ++s) {
      for (int64_t x = 0; x < V; ++x) wv[s * V + x] = ch.w[s] * v[s * V + x];
      for (int64_t x = 0; x < K; ++x) n[x] += ch.w[s] * k[s * K + x];
    }
    mm<T>(true, false, K, V, L, 1, k, K, wv.data(), V, 1, c.data(), V);
    m = ch.m[L - 1];
  }
  std::copy(c.begin(), c.end(), c_last + task * K * V);
  std::copy(n.begin(), n.end(), n_last + task * K);
  m_last[task] = m;
}

// torch.maximum(a, b)'s gradient: to the larger, half to each when equal. Returns (to a, to b).
template <typename T> inline std::pair<T, T> max_grad(T a, T b, T grad) {
  if (a > b) return {grad, T(0)};
  if (b > a) return {T(0), grad};
  return {grad / 2, grad / 2};
}

template <typename T>
void mlstm_backward_head(const Mlstm<T>& d, int64_t task, const T* bounds, const T* h_all, const T* dh_all,
                         const T* dc_last, const T* dn_last, const T* dm_last, T* dq_all, T* dk_all, T* dv_all,
                         T* di_all, T* dlogf_all, T* dc0, T* dn0, T* dm0) {
  const int64_t K = d.K, V = d.V, C = d.C;
  std::vector<T> dc(K * V, T(0)), dn(K, T(0)), dnum(C * V), dP(C * C), tmp(C * std::max(K, V)), dF(C), dI(C),
      dm(C), dqn(C), dcarried(C), dw(C);
  T dm_run = 0;
  if (dc_last) std::copy(dc_last + task * K * V, dc_last + (task + 1) * K * V, dc.begin());
  if (dn_last) std::copy(dn_last + task * K, dn_last + (task + 1) * K, dn.begin());
  if (dm_last) dm_run = dm_last[task];
  MlstmChunk<T> ch(C);
  for (int64_t j = d.chunks() - 1; j >= 0; --j) {
    const int64_t t0 = j * C, L = std::min(d.S - t0, C), at = task * d.S + t0;
    const T* kept = bounds + (task * d.chunks() + j) * d.bound();
    const T *c0 = kept, *n0 = kept + K * V, m0 = kept[K * V + K];
    const T *q = d.q + at * K, *k = d.k + at * K, *v = d.v + at * V, *i = d.i + at;
    const T *hh = h_all + at * V, *dh = dh_all + at * V;
    T *dq = dq_all + at * K, *dk = dk_all + at * K, *dv = dv_all + at * V;
    ch.L = L;
    ch.compute(q, k, i, d.logf + at, K, n0, m0, d.eps);
    std::fill(dF.begin(), dF.begin() + L, T(0));
    std::fill(dI.begin(), dI.begin() + L, T(0));
    std::fill(dm.begin(), dm.begin() + L, T(0));
    T dm0_acc = 0;
    // the output: h = num / den
    for (int64_t r = 0; r < L; ++r) {
      T dden = 0;
      for (int64_t x = 0; x < V; ++x) dnum[r * V + x] = dh[r * V + x] / ch.den[r], dden -= dh[r * V + x] * hh[r * V + x];
      dden /= ch.den[r];
      const T e = std::exp(-ch.m[r]);
      const auto [to_abs, to_e] = max_grad(std::abs(ch.qn[r]), e, dden);
      dqn[r] = ch.qn[r] > 0 ? to_abs : (ch.qn[r] < 0 ? -to_abs : T(0));
      dm[r] -= to_e * e;
    }
    // dQ = diag(carried) dnum c0^T + dqn carried n0^T + dQK K; dcarried_r = Q_r . (dnum c0^T)_r + dqn_r (Q n0)_r
    mm<T>(false, true, L, K, V, 1, dnum.data(), V, c0, V, 0, dq, K);
    for (int64_t r = 0; r < L; ++r) {
      T acc = 0;
      for (int64_t x = 0; x < K; ++x) {
        acc += q[r * K + x] * dq[r * K + x];
        dq[r * K + x] = ch.carried[r] * (dq[r * K + x] + dqn[r] * n0[x]);
      }
      dcarried[r] = acc + dqn[r] * ch.Qn[r];
    }
    // dP = dnum V^T + dqn (each row), dV = P^T dnum
    mm<T>(false, true, L, L, V, 1, dnum.data(), V, v, V, 0, dP.data(), C);
    mm<T>(true, false, L, V, L, 1, ch.P.data(), C, dnum.data(), V, 0, dv, V);
    for (int64_t r = 0; r < L; ++r) {
      for (int64_t s = 0; s <= r; ++s) {
        const T grad = dP[r * C + s] + dqn[r], W = ch.W[r * C + s];
        const T dD = grad * ch.QK[r * C + s] * W;  // through W = exp(D - m_r)
        dP[r * C + s] = grad * W;  // dQK
        dF[r] += dD, dF[s] -= dD, dI[s] += dD, dm[r] -= dD;
      }
      for (int64_t s = r + 1; s < L; ++s) dP[r * C + s] = 0;
    }
    mm<T>(false, false, L, K, L, 1, dP.data(), C, k, K, 1, dq, K);
    mm<T>(true, false, L, K, L, 1, dP.data(), C, q, K, 0, dk, K);
    // the end states: c_L = keep c0 + K^T diag(w) V, n_L = keep n0 + K^T w
    T dkeep = 0;
    for (int64_t x = 0; x < K * V; ++x) dkeep += c0[x] * dc[x];
    for (int64_t x = 0; x < K; ++x) dkeep += n0[x] * dn[x];
    mm<T>(false, false, L, V, K, 1, k, K, dc.data(), V, 0, tmp.data(), V);  // K dc_L
    for (int64_t s = 0; s < L; ++s) {
      T acc = 0, kn = 0;
      for (int64_t x = 0; x < V; ++x) acc += tmp[s * V + x] * v[s * V + x], dv[s * V + x] += ch.w[s] * tmp[s * V + x];
      for (int64_t x = 0; x < K; ++x) kn += k[s * K + x] * dn[x];
      dw[s] = acc + kn;
    }
    mm<T>(false, true, L, K, V, 1, v, V, dc.data(), V, 0, tmp.data(), K);  // V dc_L^T
    for (int64_t s = 0; s < L; ++s)
      for (int64_t x = 0; x < K; ++x) dk[s * K + x] += ch.w[s] * (tmp[s * K + x] + dn[x]);
    T dm_end = dm_run - dkeep * ch.keep;
    T dstart_end = dkeep * ch.keep;  // into F_L + m0
    for (int64_t s = 0; s < L; ++s) {
      const T dlast = dw[s] * ch.w[s];
      dm_end -= dlast;
      dF[L - 1] += dlast, dF[s] -= dlast, dI[s] += dlast;
    }
    {
      const T *last = ch.D.data() + (L - 1) * C, inner_max_end = last[ch.inner_at[L - 1]];
      const auto [to_start, to_max] = max_grad(ch.F[L - 1] + m0, inner_max_end, dm_end);
      dstart_end += to_start;
      int64_t ties = 0;
      for (int64_t s = 0; s < L; ++s) ties += last[s] == inner_max_end;
      for (int64_t s = 0; s < L; ++s)
        if (last[s] == inner_max_end) {
          const T share = to_max / T(ties);
          dF[L - 1] += share, dF[s] -= share, dI[s] += share;
        }
    }
    dF[L - 1] += dstart_end, dm0_acc += dstart_end;
    // carried_r = exp(F_r + m0 - m_r); m_r = max(F_r + m0, max_s D_rs)
    for (int64_t r = 0; r < L; ++r) {
      const T dc_r = dcarried[r] * ch.carried[r];
      T dstart = dc_r;
      const T dmr = dm[r] - dc_r;
      const T* Dr = ch.D.data() + r * C;
      const T inner = Dr[ch.inner_at[r]];
      const auto [to_start, to_inner] = max_grad(ch.F[r] + m0, inner, dmr);
      dstart += to_start;
      if (to_inner != T(0)) {
        int64_t ties = 0;
        for (int64_t s = 0; s <= r; ++s) ties += Dr[s] == inner;
        for (int64_t s = 0; s <= r; ++s)
          if (Dr[s] == inner) {
            const T share = to_inner / T(ties);
            dF[r] += share, dF[s] -= share, dI[s] += share;
          }
      }
      dF[r] += dstart, dm0_acc += dstart;
    }
    T acc = 0;
    for (int64_t r = L - 1; r >= 0; --r) {
      acc += dF[r];
      dlogf_all[at + r] = acc;
      di_all[at + r] = dI[r];
    }
    // the start states' gradients: dc0 = keep dc_L + Q^T diag(carried) dnum, dn0 = keep dn_L + Q^T (carried dqn)
    for (auto& x : dc) x *= ch.keep;
    for (auto& x : dn) x *= ch.keep;
    for (int64_t r = 0; r < L; ++r) {
      for (int64_t x = 0; x < V; ++x) dnum[r * V + x] *= ch.carried[r];
      const T scale = ch.carried[r] * dqn[r];
      for (int64_t x = 0; x < K; ++x) dn[x] += scale * q[r * K + x];
    }
    mm<T>(true, false, K, V, L, 1, q, K, dnum.data(), V, 1, dc.data(), V);
    dm_run = dm0_acc;
  }
  std::copy(dc.begin(), dc.end(), dc0 + task * K * V);
  std::copy(dn.begin(), dn.end(), dn0 + task * K);
  dm0[task] = dm_run;
}

void check_mlstm(const std::vector<at::Tensor>& tensors, int64_t chunk) {
  TORCH_CHECK(chunk > 0, "mlstm: chunk > 0");
  for (const auto& t : tensors)
    TORCH_CHECK(t.is_contiguous() && t.device().is_cpu() && t.scalar_type() == tensors[0].scalar_type(),
                "mlstm: contiguous CPU tensors of one dtype");
  const auto& q = tensors[0];
  TORCH_CHECK(q.dim() == 4 && tensors[1].sizes() == q.sizes() && tensors[2].dim() == 4 &&
              tensors[2].sizes().slice(0, 3) == q.sizes().slice(0, 3) &&
              tensors[3].sizes() == q.sizes().slice(0, 3) && tensors[4].sizes() == tensors[3].sizes(),
              "mlstm: shapes");
}

template <typename T> Mlstm<T> mlstm_of(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& i, const at::Tensor& logf, int64_t chunk, double eps) {
  return {q.data_ptr<T>(), k.data_ptr<T>(), v.data_ptr<T>(), i.data_ptr<T>(), logf.data_ptr<T>(),
          q.size(0) * q.size(1), q.size(2), q.size(3), v.size(3), chunk, T(eps)};
}

}  // namespace

std::vector<at::Tensor> gated_delta_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                            const at::Tensor& g, const at::Tensor& beta,
                                            const c10::optional<at::Tensor>& s0, int64_t chunk, bool keep) {
  check_delta(q, k, v, g, beta, chunk);
  const int64_t B = q.size(0), T_ = q.size(1), H = q.size(2), K = q.size(3), V = v.size(3);
  TORCH_CHECK(!s0.has_value() || (s0->is_contiguous() && s0->sizes() == at::IntArrayRef({B, H, K, V}) &&
              s0->scalar_type() == q.scalar_type()), "gated delta rule: initial state (B, H, K, V)");
  auto o = at::empty_like(v), last = at::empty({B, H, K, V}, q.options());
  at::Tensor bounds = keep ? at::empty({B, H, (T_ + chunk - 1) / chunk, K, V}, q.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "rnnlab_gated_delta_forward", [&] {
    const auto d = delta_of<scalar_t>(q, k, v, g, beta, chunk);
    const scalar_t* start = s0.has_value() ? s0->data_ptr<scalar_t>() : nullptr;
    scalar_t* kept = keep ? bounds.data_ptr<scalar_t>() : nullptr;
    for_each_task(B * H, [&](int64_t task) {
      delta_forward_head(d, task, start, o.data_ptr<scalar_t>(), last.data_ptr<scalar_t>(), kept);
    });
  });
  return {o, last, bounds};
}

std::vector<at::Tensor> gated_delta_backward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                             const at::Tensor& g, const at::Tensor& beta, const at::Tensor& bounds,
                                             const at::Tensor& dout, const c10::optional<at::Tensor>& dlast,
                                             bool want_ds0, int64_t chunk) {
  check_delta(q, k, v, g, beta, chunk);
  const int64_t B = q.size(0), H = q.size(2), K = q.size(3), V = v.size(3);
  TORCH_CHECK(dout.is_contiguous() && dout.sizes() == v.sizes() && dout.scalar_type() == q.scalar_type(),
              "gated delta rule: dout (B, T, H, V)");
  TORCH_CHECK(bounds.is_contiguous() && bounds.dim() == 5, "gated delta rule: bounds");
  TORCH_CHECK(!dlast.has_value() || (dlast->is_contiguous() && dlast->sizes() == at::IntArrayRef({B, H, K, V})),
              "gated delta rule: dlast (B, H, K, V)");
  auto dq = at::empty_like(q), dk = at::empty_like(k), dv = at::empty_like(v), dg = at::empty_like(g),
       dbeta = at::empty_like(beta);
  at::Tensor ds0 = want_ds0 ? at::empty({B, H, K, V}, q.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "rnnlab_gated_delta_backward", [&] {
    const auto d = delta_of<scalar_t>(q, k, v, g, beta, chunk);
    const scalar_t* end = dlast.has_value() ? dlast->data_ptr<scalar_t>() : nullptr;
    for_each_task(B * H, [&](int64_t task) {
      delta_backward_head(d, task, bounds.data_ptr<scalar_t>(), dout.data_ptr<scalar_t>(), end,
                          dq.data_ptr<scalar_t>(), dk.data_ptr<scalar_t>(), dv.data_ptr<scalar_t>(),
                          dg.data_ptr<scalar_t>(), dbeta.data_ptr<scalar_t>(),
                          want_ds0 ? ds0.data_ptr<scalar_t>() : nullptr);
    });
  });
  return {dq, dk, dv, dg, dbeta, ds0};
}

std::vector<at::Tensor> mlstm_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& i, const at::Tensor& logf, const at::Tensor& c0,
                                      const at::Tensor& n0, const at::Tensor& m0, double eps, int64_t chunk,
                                      bool keep) {
  check_mlstm({q, k, v, i, logf, c0, n0, m0}, chunk);
  const int64_t B = q.size(0), NH = q.size(1), S = q.size(2), K = q.size(3), V = v.size(3);
  TORCH_CHECK(c0.numel() == B * NH * K * V && n0.numel() == B * NH * K && m0.numel() == B * NH, "mlstm: states");
  auto h = at::empty_like(v), c = at::empty_like(c0), n = at::empty_like(n0), m = at::empty_like(m0);
  at::Tensor bounds = keep ? at::empty({B, NH, (S + chunk - 1) / chunk, K * V + K + 1}, q.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "rnnlab_mlstm_forward", [&] {
    const auto d = mlstm_of<scalar_t>(q, k, v, i, logf, chunk, eps);
    scalar_t* kept = keep ? bounds.data_ptr<scalar_t>() : nullptr;
    for_each_task(B * NH, [&](int64_t task) {
      mlstm_forward_head(d, task, c0.data_ptr<scalar_t>(), n0.data_ptr<scalar_t>(), m0.data_ptr<scalar_t>(),
                         h.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(), n.data_ptr<scalar_t>(),
                         m.data_ptr<scalar_t>(), kept);
    });
  });
  return {h, c, n, m, bounds};
}

std::vector<at::Tensor> mlstm_backward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& i, const at::Tensor& logf, const at::Tensor& bounds,
                                       const at::Tensor& h, const at::Tensor& dh, const at::Tensor& dc,
                                       const at::Tensor& dn, const at::Tensor& dm, double eps, int64_t chunk) {
  check_mlstm({q, k, v, i, logf, h, dh, dc, dn, dm, bounds}, chunk);
  const int64_t B = q.size(0), NH = q.size(1), K = q.size(3), V = v.size(3);
  TORCH_CHECK(dh.sizes() == v.sizes() && h.sizes() == v.sizes() && dc.numel() == B * NH * K * V &&
              dn.numel() == B * NH * K && dm.numel() == B * NH, "mlstm: gradients' shapes");
  auto dq = at::empty_like(q), dk = at::empty_like(k), dv = at::empty_like(v), di = at::empty_like(i),
       dlogf = at::empty_like(logf), dc0 = at::empty_like(dc), dn0 = at::empty_like(dn), dm0 = at::empty_like(dm);
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "rnnlab_mlstm_backward", [&] {
    const auto d = mlstm_of<scalar_t>(q, k, v, i, logf, chunk, eps);
    for_each_task(B * NH, [&](int64_t task) {
      mlstm_backward_head(d, task, bounds.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(), dh.data_ptr<scalar_t>(),
                          dc.data_ptr<scalar_t>(), dn.data_ptr<scalar_t>(), dm.data_ptr<scalar_t>(),
                          dq.data_ptr<scalar_t>(), dk.data_ptr<scalar_t>(), dv.data_ptr<scalar_t>(),
                          di.data_ptr<scalar_t>(), dlogf.data_ptr<scalar_t>(), dc0.data_ptr<scalar_t>(),
                          dn0.data_ptr<scalar_t>(), dm0.data_ptr<scalar_t>());
    });
  });
  return {dq, dk, dv, di, dlogf, dc0, dn0, dm0};
}

bool has_blas() { return sgemm_ != nullptr && dgemm_ != nullptr; }

bool set_blas(bool on) {
  std::swap(blas_wanted, on);
  return on;
}

}  // namespace rnnlab
