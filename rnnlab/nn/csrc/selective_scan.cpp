// The selective scan of ops/selective_scan.py (Mamba's S6, Gu & Dao 2023), forward and backward, on the CPU:
//
//   h_t[d, n] = exp(dt_t[d] A[d, n]) h_{t-1}[d, n] + dt_t[d] u_t[d] B_t[gB(d), n],
//   y_t[d]    = sum_n C_t[gC(d), n] h_t[d, n]
//
// (the D skip, the z gate, delta's bias and softplus are torch operations around it, in selective_scan.py).
// Layout: u, dt, y (batch, D, L); A (D, N); B (batch, GB, L, N) and C (batch, GC, L, N), time-major in their last
// two dimensions so that a step reads one contiguous row of N; h0 and the last state (batch, D, N). Channel d
// reads group d / (D / G) of B and of C.
//
// A task is one batch row and a run of channels that share one group of B and one of C (a "part"); it walks
// time a chunk at a time, every channel of the run through the chunk before the next chunk, so the chunk's rows
// of B and C (and, backward, of dB and dC) stay in cache. A channel's N states are one vector (one AVX-512
// register of floats at N = 16). Forward keeps only the state at the start of every chunk (bounds:
// (batch, D, chunks, N)); backward takes the chunks last to first, recomputes a chunk's states and decays from
// its bound into a (chunk + 1) x N buffer, and walks it back:
//
//   dh_t  = dy_t C_t + exp(dt_{t+1} A) dh_{t+1}         (dh_L: the last state's gradient, or 0)
//   dC_t += dy_t h_t          dB_t += dh_t dt_t u_t      du_t = dt_t sum_n dh_t B_t
//   ddt_t = u_t sum_n dh_t B_t + sum_n dh_t h_{t-1} exp(dt_t A) A
//   dA   += dh_t h_{t-1} exp(dt_t A) dt_t                dh0 = exp(dt_1 A) dh_1
//
// Each part writes dB and dC into a slice of its own (batch, parts, L, N), added up per group at the end, so no
// two tasks write one number; with one group (Mamba's layout) and a part per batch row that slice is dB itself.

#include "common.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

namespace rnnlab {
namespace {

// The runs of channels the tasks take: D is cut at every group boundary of B and of C (segments of
// gcd(D / GB, D / GC) channels, each inside one group of both), and each segment into `split` runs when there
// would be fewer than two tasks per thread.
struct Parts {
  int64_t D, GB, GC, segment, split;

  Parts(int64_t D, int64_t GB, int64_t GC, int64_t batch) : D(D), GB(GB), GC(GC) {
    segment = std::gcd(D / GB, D / GC);
    const int64_t tasks = batch * (D / segment), wanted = 2 * at::get_num_threads();
    split = std::min(segment, std::max<int64_t>(1, (wanted + tasks - 1) / tasks));
  }
  int64_t count() const { return D / segment * split; }
  int64_t first(int64_t p) const { return p / split * segment + p % split * segment / split; }
  int64_t last(int64_t p) const { return p / split * segment + (p % split + 1) * segment / split; }
  int64_t group_b(int64_t p) const { return first(p) / (D / GB); }
  int64_t group_c(int64_t p) const { return first(p) / (D / GC); }
};

// A (batch, D, L) tensor through its strides: a channel's steps are `step` apart (1, or D when laid out (batch, L, D)).
template <typename T> struct Strided {
  T* data;
  int64_t batch, channel, step;
  T* row(int64_t b, int64_t d) const { return data + b * batch + d * channel; }
};

template <typename T> Strided<T> strided(const at::Tensor& t) {
  return {t.data_ptr<std::remove_const_t<T>>(), t.stride(0), t.stride(1), t.stride(2)};
}

// B and C: (batch, G, L, N) through their strides, a step's row of N contiguous.
template <typename T> struct Rows {
  const T* data;
  int64_t batch, group, step;
  const T* first(int64_t b, int64_t g) const { return data + b * batch + g * group; }
};

template <typename T>
struct Scan {
  Strided<const T> u, dt;
  const T *A, *h0;
  Rows<T> B, C;
  int64_t batch, D, L, N, chunk;
  int64_t chunks() const { return (L + chunk - 1) / chunk; }
};

template <typename T>
void forward_part(const Scan<T>& s, const Parts& parts, int64_t b, int64_t p, const Strided<T>& y, T* last,
                  T* bounds) {
  const int64_t first = parts.first(p), channels = parts.last(p) - first, N = s.N, L = s.L;
  const int64_t gb = parts.group_b(p), gc = parts.group_c(p);
  std::vector<T> states(channels * N);  // (channels, N)
  for (int64_t k = 0; k < channels; ++k)
    for (int64_t n = 0; n < N; ++n) states[k * N + n] = s.h0 ? s.h0[(b * s.D + first + k) * N + n] : T(0);
  for (int64_t c = 0; c < s.chunks(); ++c) {
    const int64_t t0 = c * s.chunk, t1 = std::min(L, t0 + s.chunk);
    for (int64_t k = 0; k < channels; ++k) {
      const int64_t d = first + k;
      const T *u = s.u.row(b, d), *dt = s.dt.row(b, d), *Bs = s.B.first(b, gb), *Cs = s.C.first(b, gc);
      T* yd = y.row(b, d);
      T* h = states.data() + k * N;
      const T* a = s.A + d * N;
      if (bounds) std::copy(h, h + N, bounds + ((b * s.D + d) * s.chunks() + c) * N);
      for (int64_t t = t0; t < t1; ++t) {
        const T delta = dt[t * s.dt.step], x = delta * u[t * s.u.step];
        const T *Bt = Bs + t * s.B.step, *Ct = Cs + t * s.C.step;
        T acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t n = 0; n < N; ++n) {
          const T state = std::exp(delta * a[n]) * h[n] + x * Bt[n];
          h[n] = state;
          acc += Ct[n] * state;
        }
        yd[t * y.step] = acc;
      }
    }
  }
  std::copy(states.begin(), states.end(), last + (b * s.D + first) * N);
}

template <typename T>
void backward_part(const Scan<T>& s, const Parts& parts, int64_t b, int64_t p, const T* bounds,
                   const Strided<const T>& dy, const T* dlast, const Strided<T>& du, const Strided<T>& ddt, T* dA,
                   T* dB, T* dC, T* dh0) {
  const int64_t first = parts.first(p), channels = parts.last(p) - first, N = s.N, L = s.L;
  const int64_t gb = parts.group_b(p), gc = parts.group_c(p), slice = (b * parts.count() + p) * L;
  std::vector<T> carry(channels * N, T(0)), decay_grad(channels * N, T(0));  // dh_{t+1} exp(dt_{t+1} A); dA
  if (dlast) std::copy(dlast + (b * s.D + first) * N, dlast + (b * s.D + first + channels) * N, carry.begin());
  std::vector<T> states((s.chunk + 1) * N), decays(s.chunk * N);  // a chunk's h_{t0-1} .. h_{t1-1}; its exps
  for (int64_t c = s.chunks() - 1; c >= 0; --c) {
    const int64_t t0 = c * s.chunk, t1 = std::min(L, t0 + s.chunk);
    for (int64_t k = 0; k < channels; ++k) {
      const int64_t d = first + k;
      const T *u = s.u.row(b, d), *dt = s.dt.row(b, d), *Bs = s.B.first(b, gb), *Cs = s.C.first(b, gc);
      const T* dyd = dy.row(b, d);
      T *dud = du.row(b, d), *ddtd = ddt.row(b, d);
      const T* a = s.A + d * N;
      T *cr = carry.data() + k * N, *da = decay_grad.data() + k * N;
      const T* bound = bounds + ((b * s.D + d) * s.chunks() + c) * N;
      std::copy(bound, bound + N, states.begin());
      for (int64_t t = t0; t < t1; ++t) {  // the chunk's states again, from its bound
        const T delta = dt[t * s.dt.step], x = delta * u[t * s.u.step];
        const T* Bt = Bs + t * s.B.step;
        T *e = decays.data() + (t - t0) * N, *before = states.data() + (t - t0) * N, *h = before + N;
#pragma omp simd
        for (int64_t n = 0; n < N; ++n) {
          e[n] = std::exp(delta * a[n]);
          h[n] = e[n] * before[n] + x * Bt[n];
        }
      }
      for (int64_t t = t1 - 1; t >= t0; --t) {
        const T g = dyd[t * dy.step], delta = dt[t * s.dt.step], ut = u[t * s.u.step], x = delta * ut;
        const T *Bt = Bs + t * s.B.step, *Ct = Cs + t * s.C.step;
        const T *e = decays.data() + (t - t0) * N, *before = states.data() + (t - t0) * N, *h = before + N;
        T *dBt = dB + (slice + t) * N, *dCt = dC + (slice + t) * N;
        T through_b = 0, through_a = 0;  // sum_n dh B;  sum_n dh h_{t-1} e A
#pragma omp simd reduction(+ : through_b, through_a)
        for (int64_t n = 0; n < N; ++n) {
          const T dh = g * Ct[n] + cr[n];
          dCt[n] += g * h[n];
          dBt[n] += dh * x;
          through_b += dh * Bt[n];
          const T q = dh * before[n] * e[n];  // dL/d(dt A) through the decay
          through_a += q * a[n];
          da[n] += q * delta;
          cr[n] = dh * e[n];
        }
        ddtd[t * ddt.step] = through_a + through_b * ut;
        dud[t * du.step] = through_b * delta;
      }
    }
  }
  std::copy(carry.begin(), carry.end(), dh0 + (b * s.D + first) * N);
  std::copy(decay_grad.begin(), decay_grad.end(), dA + (b * s.D + first) * N);
}

void check(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
           const c10::optional<at::Tensor>& h0, int64_t chunk) {
  const auto dtype = u.scalar_type();
  for (const at::Tensor* t : {&u, &dt, &A, &B, &C})
    TORCH_CHECK(!t->is_cuda() && t->scalar_type() == dtype, "selective scan: CPU tensors of one dtype");
  TORCH_CHECK(u.dim() == 3 && dt.sizes() == u.sizes(), "selective scan: u and dt (batch, D, L)");
  const int64_t batch = u.size(0), D = u.size(1), L = u.size(2);
  TORCH_CHECK(A.is_contiguous() && A.dim() == 2 && A.size(0) == D, "selective scan: A contiguous (D, N)");
  for (const at::Tensor* t : {&B, &C})
    TORCH_CHECK(t->dim() == 4 && t->size(0) == batch && t->size(1) > 0 && D % t->size(1) == 0 && t->size(2) == L &&
                t->size(3) == A.size(1) && t->stride(3) == 1, "selective scan: B and C (batch, G, L, N), a step's "
                "row contiguous, with D % G == 0");
  TORCH_CHECK(!h0.has_value() || (h0->is_contiguous() && h0->scalar_type() == dtype && h0->dim() == 3 &&
              h0->size(0) == batch && h0->size(1) == D && h0->size(2) == A.size(1)),
              "selective scan: h0 (batch, D, N)");
  TORCH_CHECK(chunk > 0 && L > 0, "selective scan: chunk > 0 and L > 0");
}

template <typename T>
Scan<T> scan_of(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& B,
                const at::Tensor& C, const c10::optional<at::Tensor>& h0, int64_t chunk) {
  return Scan<T>{strided<const T>(u), strided<const T>(dt), A.data_ptr<T>(),
                 h0.has_value() ? h0->data_ptr<T>() : nullptr,
                 Rows<T>{B.data_ptr<T>(), B.stride(0), B.stride(1), B.stride(2)},
                 Rows<T>{C.data_ptr<T>(), C.stride(0), C.stride(1), C.stride(2)}, u.size(0), u.size(1), u.size(2),
                 A.size(1), chunk};
}

// Runs task(b, p) for every batch row and part, shared between the cores, subnormals flushed.
template <typename F> void for_each_part(int64_t batch, const Parts& parts, const F& task) {
  for_each_task(batch * parts.count(), [&](int64_t index) { task(index / parts.count(), index % parts.count()); });
}

// (batch, parts, L, N) partial sums -> (batch, G, L, N): each part's slice added to its group's.
at::Tensor per_group(const at::Tensor& partial, const Parts& parts, int64_t groups, bool of_b) {
  std::vector<int64_t> index(parts.count());
  for (int64_t p = 0; p < parts.count(); ++p) index[p] = of_b ? parts.group_b(p) : parts.group_c(p);
  if (parts.count() == groups) return partial;  // a part per group: its slice is the group's (index is 0..G-1)
  const auto shape = partial.sizes();
  return at::zeros({shape[0], groups, shape[2], shape[3]}, partial.options())
      .index_add_(1, at::tensor(index, at::kLong), partial);
}

// A (batch, D, L) tensor stored as `like` is: step-major ((batch, L, D) in memory) or channel-major.
at::Tensor empty_as(const at::Tensor& like) {
  if (like.stride(1) == 1 && like.size(1) > 1)
    return at::empty({like.size(0), like.size(2), like.size(1)}, like.options()).transpose(1, 2);
  return at::empty(like.sizes(), like.options());
}

}  // namespace

std::vector<at::Tensor> selective_scan_forward(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A,
                                               const at::Tensor& B, const at::Tensor& C,
                                               const c10::optional<at::Tensor>& h0, int64_t chunk, bool keep) {
  check(u, dt, A, B, C, h0, chunk);
  const int64_t batch = u.size(0), D = u.size(1), L = u.size(2), N = A.size(1);
  const Parts parts(D, B.size(1), C.size(1), batch);
  auto y = empty_as(dt);
  auto last = at::empty({batch, D, N}, u.options());
  at::Tensor bounds = keep ? at::empty({batch, D, (L + chunk - 1) / chunk, N}, u.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "rnnlab_selective_scan_forward", [&] {
    const auto s = scan_of<scalar_t>(u, dt, A, B, C, h0, chunk);
    const auto out = strided<scalar_t>(y);
    scalar_t* end = last.data_ptr<scalar_t>();
    scalar_t* kept = keep ? bounds.data_ptr<scalar_t>() : nullptr;
    for_each_part(batch, parts, [&](int64_t b, int64_t p) { forward_part(s, parts, b, p, out, end, kept); });
  });
  return {y, last, bounds};
}

std::vector<at::Tensor> selective_scan_backward(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A,
                                                const at::Tensor& B, const at::Tensor& C,
                                                const c10::optional<at::Tensor>& h0, const at::Tensor& bounds,
                                                const at::Tensor& dy, const c10::optional<at::Tensor>& dlast,
                                                int64_t chunk) {
  check(u, dt, A, B, C, h0, chunk);
  const int64_t batch = u.size(0), D = u.size(1), L = u.size(2), N = A.size(1);
  TORCH_CHECK(bounds.is_contiguous() && bounds.dim() == 4 && bounds.size(2) == (L + chunk - 1) / chunk &&
              bounds.scalar_type() == u.scalar_type(), "selective scan: bounds (batch, D, chunks, N)");
  TORCH_CHECK(dy.sizes() == u.sizes() && dy.scalar_type() == u.scalar_type(), "selective scan: dy (batch, D, L)");
  TORCH_CHECK(!dlast.has_value() || (dlast->is_contiguous() && dlast->sizes() == at::IntArrayRef({batch, D, N}) &&
              dlast->scalar_type() == u.scalar_type()), "selective scan: dlast (batch, D, N)");
  const Parts parts(D, B.size(1), C.size(1), batch);
  auto du = empty_as(u), ddt = empty_as(dt);
  auto dA = at::empty({batch, D, N}, u.options()), dh0 = at::empty({batch, D, N}, u.options());
  auto dB = at::zeros({batch, parts.count(), L, N}, u.options()), dC = at::zeros_like(dB);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "rnnlab_selective_scan_backward", [&] {
    const auto s = scan_of<scalar_t>(u, dt, A, B, C, h0, chunk);
    const scalar_t* end = dlast.has_value() ? dlast->data_ptr<scalar_t>() : nullptr;
    for_each_part(batch, parts, [&](int64_t b, int64_t p) {
      backward_part(s, parts, b, p, bounds.data_ptr<scalar_t>(), strided<const scalar_t>(dy), end,
                    strided<scalar_t>(du), strided<scalar_t>(ddt), dA.data_ptr<scalar_t>(), dB.data_ptr<scalar_t>(),
                    dC.data_ptr<scalar_t>(), dh0.data_ptr<scalar_t>());
    });
  });
  return {du, ddt, dA.sum(0), per_group(dB, parts, B.size(1), true), per_group(dC, parts, C.size(1), false), dh0};
}

}  // namespace rnnlab

namespace rnnlab {
namespace {

// One token of Mamba's mixer between in_proj and out_proj (mamba.py's MambaMixer.step), for sampling, in two
// passes (no autograd: inference only). Each loop runs over channels alone, so that the compiler vectorises it
// (exp and log1p included).
// First, per batch row: the convolution's window slides by one, u = silu(conv), [dt; B; C] = x_proj u.
template <typename T>
void mixer_inputs_row(const T* xz, const T* window, const T* conv_w, const T* conv_b, const T* x_proj, T* u,
                      T* projected, T* window_out, int64_t E, int64_t K, int64_t J) {
#pragma omp simd
  for (int64_t e = 0; e < E; ++e) {  // the convolution over the K latest inputs, oldest first
    T conv = conv_b ? conv_b[e] : T(0);
    for (int64_t k = 0; k < K - 1; ++k) conv += conv_w[e * K + k] * window[e * (K - 1) + k];
    conv += conv_w[e * K + K - 1] * xz[e];
    u[e] = conv / (T(1) + std::exp(-conv));  // silu
  }
  for (int64_t e = 0; e < E && K > 1; ++e) {  // the window slides by one
    for (int64_t k = 0; k + 1 < K - 1; ++k) window_out[e * (K - 1) + k] = window[e * (K - 1) + k + 1];
    window_out[e * (K - 1) + K - 2] = xz[e];
  }
  for (int64_t j = 0; j < J; ++j) {  // x_proj: (R + 2S, E) times u
    const T* row = x_proj + j * E;
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t e = 0; e < E; ++e) acc += row[e] * u[e];
    projected[j] = acc;
  }
}

// Then, for channels [begin, end) of one row: dt = softplus(dt_proj dt + bias), the state steps once,
// y = (C . h + D u) silu(z). Pointers are the row's, channel 0.
template <typename T>
void mixer_state_channels(const T* xz, const T* u, const T* projected, const T* state, const T* dt_w, const T* dt_b,
                          const T* A_log, const T* D, T* y, T* state_out, int64_t begin, int64_t end, int64_t E,
                          int64_t R, int64_t S) {
  const T *low = projected, *B = low + R, *C = B + S;
  for (int64_t e = begin; e < end; ++e) {
    T v = dt_b[e];  // dt_proj: (E, R) times the low-rank dt
#pragma omp simd reduction(+ : v)
    for (int64_t r = 0; r < R; ++r) v += dt_w[e * R + r] * low[r];
    y[e] = v;  // y holds dt until the state has stepped
  }
#pragma omp simd
  for (int64_t e = begin; e < end; ++e) y[e] = y[e] > T(20) ? y[e] : std::log1p(std::exp(y[e]));  // softplus
  for (int64_t e = begin; e < end; ++e) {  // the state steps once; y's sum over the S states
    const T dt = y[e], x = dt * u[e], *a_log = A_log + e * S, *h = state + e * S;
    T* h_out = state_out + e * S;
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t n = 0; n < S; ++n) {
      const T next = std::exp(-dt * std::exp(a_log[n])) * h[n] + x * B[n];
      h_out[n] = next;
      acc += C[n] * next;
    }
    y[e] = acc;
  }
#pragma omp simd
  for (int64_t e = begin; e < end; ++e) {  // the skip and the gate
    const T z = xz[E + e];
    y[e] = (y[e] + D[e] * u[e]) * z / (T(1) + std::exp(-z));
  }
}

// out (N, M) = x (N, K) W^T + b for the few rows of a sampling step, W's rows split across threads: a GEMM has
// nothing to block there, and torch's linear at N = 1 costs more than reading W.
template <typename T>
void small_linear(const T* x, const T* W, const T* b, T* out, int64_t N, int64_t M, int64_t K) {
  at::parallel_for(0, M, 128, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const T* w = W + j * K;
      for (int64_t n = 0; n < N; ++n) {
        const T* row = x + n * K;
        T acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t k = 0; k < K; ++k) acc += w[k] * row[k];
        out[n * M + j] = b ? acc + b[j] : acc;
      }
    }
  });
}

// RMSNorm of each of the N rows of x (N, H) into out: x / sqrt(mean(x^2) + eps) * weight (torch.nn.RMSNorm).
template <typename T>
void rms_norm_rows(const T* x, const T* weight, T* out, int64_t N, int64_t H, double eps) {
  for (int64_t n = 0; n < N; ++n) {
    const T* row = x + n * H;
    T squares = 0;
#pragma omp simd reduction(+ : squares)
    for (int64_t j = 0; j < H; ++j) squares += row[j] * row[j];
    const T scale = T(1) / std::sqrt(squares / T(H) + T(eps));
    for (int64_t j = 0; j < H; ++j) out[n * H + j] = row[j] * scale * weight[j];
  }
}

// One token of the mixer for N rows (xz (N, 2E) -> y (N, E), the windows and states stepped): the first pass
// per row, the second in blocks of channels, so that one row of sampling still uses every thread.
template <typename T>
void mixer_step_rows(const at::Tensor& xz, const at::Tensor& window, const at::Tensor& state, const at::Tensor& conv_w,
                     const c10::optional<at::Tensor>& conv_b, const at::Tensor& x_proj, const at::Tensor& dt_w,
                     const at::Tensor& dt_b, const at::Tensor& A_log, const at::Tensor& D, at::Tensor& y,
                     at::Tensor& window_out, at::Tensor& state_out) {
  const int64_t N = xz.size(0), E = xz.size(1) / 2, K = conv_w.size(-1), R = dt_w.size(1), S = A_log.size(1);
  const int64_t J = R + 2 * S, block = 64;  // channels per task of the second pass
  const T* bias = conv_b.has_value() ? conv_b->data_ptr<T>() : nullptr;
  auto u = at::empty({N, E}, xz.options()), projected = at::empty({N, J}, xz.options());
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      mixer_inputs_row(xz.data_ptr<T>() + n * 2 * E, window.data_ptr<T>() + n * E * (K - 1), conv_w.data_ptr<T>(),
                       bias, x_proj.data_ptr<T>(), u.data_ptr<T>() + n * E, projected.data_ptr<T>() + n * J,
                       window_out.data_ptr<T>() + n * E * (K - 1), E, K, J);
  });
  const int64_t blocks = (E + block - 1) / block;  // the tasks: (row, block of channels), so one row has several
  at::parallel_for(0, N * blocks, 1, [&](int64_t begin, int64_t end) {
    const FlushSubnormals flush;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, first = task % blocks * block;
      mixer_state_channels(xz.data_ptr<T>() + n * 2 * E, u.data_ptr<T>() + n * E, projected.data_ptr<T>() + n * J,
                           state.data_ptr<T>() + n * E * S, dt_w.data_ptr<T>(), dt_b.data_ptr<T>(),
                           A_log.data_ptr<T>(), D.data_ptr<T>(), y.data_ptr<T>() + n * E,
                           state_out.data_ptr<T>() + n * E * S, first, std::min(first + block, E), E, R, S);
    }
  });
}

}  // namespace

// One token through a stack of Mamba blocks, as sampling runs it (Mamba._step_in_cpp, no autograd): for each
// layer h = h + out_proj(mixer(in_proj(rmsnorm(h)))), then the final norm; one call per token, so that the
// layer's per-token cost is its arithmetic, not the dispatch of some twenty torch operations.
std::vector<at::Tensor> mamba_stack_step(const at::Tensor& input, const at::Tensor& windows, const at::Tensor& states,
                                         const std::vector<std::vector<c10::optional<at::Tensor>>>& layers,
                                         const at::Tensor& norm_f, double eps) {
  const int64_t N = input.size(0), H = input.size(1), L = static_cast<int64_t>(layers.size());
  TORCH_CHECK(input.dim() == 2 && !input.is_cuda() && norm_f.numel() == H && windows.dim() == 4 && states.dim() == 4 &&
              windows.size(0) == L && states.size(0) == L && windows.size(1) == N && states.size(1) == N,
              "mamba stack step: input (N, H), windows and states (layers, N, E, .)");
  const auto options = input.options();
  auto windows_out = at::empty(windows.sizes(), options), states_out = at::empty(states.sizes(), options);
  auto h = input.contiguous().clone(), normed = at::empty_like(h);  // (N, H)   the residual stream, its norm
  // out = x W^T + b: the threads split W's rows for a few rows of x, torch's GEMM for many
  const auto linear = [&](const at::Tensor& x, const at::Tensor& W, const c10::optional<at::Tensor>& b) {
    if (N > 8) return at::linear(x, W, b);
    auto out = at::empty({N, W.size(0)}, options);
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "rnnlab_mamba_stack_linear", [&] {
      small_linear(x.data_ptr<scalar_t>(), W.data_ptr<scalar_t>(), b ? b->data_ptr<scalar_t>() : nullptr,
                   out.data_ptr<scalar_t>(), N, W.size(0), W.size(1));
    });
    return out;
  };
  for (int64_t l = 0; l < L; ++l) {
    // norm, in_proj w/b, conv w/b, x_proj, dt_proj w/b, A_log, D, out_proj w/b; biases may be None
    std::vector<c10::optional<at::Tensor>> p;
    for (const auto& given : layers[l]) {
      TORCH_CHECK(!given || (given->scalar_type() == input.scalar_type() && !given->is_cuda()),
                  "mamba stack step: every tensor on the CPU in the input's dtype");
      p.push_back(given ? c10::optional<at::Tensor>(given->contiguous()) : c10::nullopt);
    }
    TORCH_CHECK(p.size() == 12 && p[0] && p[1] && p[3] && p[5] && p[6] && p[7] && p[8] && p[9] && p[10] &&
                p[1]->size(1) == H && p[10]->size(0) == H, "mamba stack step: twelve tensors per layer");
    const int64_t E = p[9]->numel();
    TORCH_CHECK(windows.size(2) == E && states.size(2) == E && p[1]->size(0) == 2 * E &&
                states.size(3) == p[8]->size(1) && windows.size(3) == p[3]->size(-1) - 1,
                "mamba stack step: windows and states (layers, N, E, K-1), (layers, N, E, S)");
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "rnnlab_mamba_stack_norm", [&] {
      rms_norm_rows(h.data_ptr<scalar_t>(), p[0]->data_ptr<scalar_t>(), normed.data_ptr<scalar_t>(), N, H, eps);
    });
    const auto xz = linear(normed, *p[1], p[2]);  // (N, 2E)
    auto window_out = windows_out[l], state_out = states_out[l], y = at::empty({N, E}, options);  // views, (N, E)
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "rnnlab_mamba_stack_mixer", [&] {
      mixer_step_rows<scalar_t>(xz, windows[l].contiguous(), states[l].contiguous(), *p[3], p[4], *p[5], *p[6],
                                *p[7], *p[8], *p[9], y, window_out, state_out);
    });
    h.add_(linear(y, *p[10], p[11]));  // h + out_proj(y)
  }
  auto output = at::empty_like(h);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "rnnlab_mamba_stack_norm_f", [&] {
    rms_norm_rows(h.data_ptr<scalar_t>(), norm_f.contiguous().data_ptr<scalar_t>(), output.data_ptr<scalar_t>(), N,
                  H, eps);
  });
  return {output, windows_out, states_out};
}

}  // namespace rnnlab
