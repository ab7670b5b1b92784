// The fast path of rnnlab's engine: the time loop of engine.py (one layer, one direction, packed rows), forward
// and backward, in C++. Matrix products go to ATen (BLAS); each cell's element-wise step is one fused loop.
// The equations are those of cells.py, written out per element; engine.py stays the readable reference and
// the parity tests hold this file to it (and to torch.nn) in float64.
//
// Layout (as engine.py): x (N, D) holds the rows of every step, step t the next batch_sizes[t] rows; a step's
// rows are the first batch_sizes[t] sequences. G = gates (RNN 1, LSTM 4, GRU 3), H = hidden, P = proj or H.

// The headers the engine uses, not all of <torch/extension.h> (the C++ frontend's modules and optimizers):
// a first build is the compiler's slowest step on a fresh machine, and these save a fifth of it.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/utils/pybind.h>

#include "common.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

enum Mode { RNN_TANH = 0, RNN_RELU = 1, LSTM = 2, GRU = 3 };

int64_t gates_of(int64_t mode) { return mode == LSTM ? 4 : mode == GRU ? 3 : 1; }

// sigmoid(v) = 1 / (1 + e^-v) through one exp, which the compiler vectorizes (glibc's libmvec): measured here
// 2x faster than through tanh. The exponent is capped so that e^-v stays finite (-ffast-math assumes no
// infinities); the result is exact to rounding for any v.
template <typename T> inline T sigmoid(T v) { return T(1) / (T(1) + std::exp(std::min(-v, T(80)))); }

// (first row, row count) of each step, in the order the loop visits them.
std::vector<std::pair<int64_t, int64_t>> step_rows(const std::vector<int64_t>& batch_sizes, bool reverse) {
  std::vector<std::pair<int64_t, int64_t>> rows;
  int64_t offset = 0;
  for (int64_t size : batch_sizes) {
    rows.emplace_back(offset, size);
    offset += size;
  }
  if (reverse) std::reverse(rows.begin(), rows.end());
  return rows;
}

// Below this many multiply-adds a plain loop is faster than the call into BLAS (small batches and sizes).
constexpr int64_t SMALL_PRODUCT = 1 << 14;

// oneDNN's linear on a weight packed once for it (what torch.nn's own LSTM kernel gets from oneDNN): for the
// per-step recurrent products it runs faster than a BLAS call on the plain matrix once the state has 512
// units or more (measured: LSTM training step 1.19x faster at hidden 512; slower at 128 and 256). Used for
// float32 where torch has oneDNN (found through the dispatcher); use_onednn(false) turns it off.
bool onednn_wanted = true;
constexpr int64_t ONEDNN_FROM = 512;

using LinearOp = c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, const at::Tensor&,
                                                      const c10::optional<at::Tensor>&, c10::string_view,
                                                      c10::List<c10::optional<at::Scalar>>,
                                                      c10::optional<c10::string_view>)>;
using PackOp = c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, c10::optional<int64_t>)>;

struct OneDNN {
  c10::optional<LinearOp> linear;  // y = x W^T + b with W packed by `pack`
  c10::optional<PackOp> pack;
  bool present() const { return linear.has_value() && pack.has_value(); }

  at::Tensor apply(const at::Tensor& x, const at::Tensor& packed, const c10::optional<at::Tensor>& bias) const {
    return linear->call(x, packed, bias, "none", c10::List<c10::optional<at::Scalar>>(), c10::nullopt);
  }
};

const OneDNN& onednn() {
  static OneDNN ops = [] {
    OneDNN found;
    if (!at::hasMKLDNN()) return found;
    auto& dispatcher = c10::Dispatcher::singleton();
    auto linear = dispatcher.findSchema({"mkldnn::_linear_pointwise", ""});
    auto pack = dispatcher.findSchema({"mkldnn::_reorder_linear_weight", ""});
    if (linear.has_value() && pack.has_value()) {
      found.linear = linear->typed<at::Tensor(const at::Tensor&, const at::Tensor&, const c10::optional<at::Tensor>&,
                                              c10::string_view, c10::List<c10::optional<at::Scalar>>,
                                              c10::optional<c10::string_view>)>();
      found.pack = pack->typed<at::Tensor(const at::Tensor&, c10::optional<int64_t>)>();
    }
    return found;
  }();
  return ops;
}

// A weight w (n, k) that every step multiplies, y = a w^T, and oneDNN's packed copy of it where that is used.
struct StepWeight {
  at::Tensor w, packed;
};

StepWeight step_weight(const at::Tensor& w, int64_t batch) {
  StepWeight weight{w, at::Tensor()};
  if (onednn_wanted && w.scalar_type() == at::kFloat && std::min(w.size(0), w.size(1)) >= ONEDNN_FROM &&
      onednn().present())
    weight.packed = onednn().pack->call(w, batch);
  return weight;
}

// A (rows, cols) tensor over raw memory that the loop owns (a step's rows of a larger buffer), for BLAS.
template <typename T>
at::Tensor rows_view(const T* data, int64_t rows, int64_t cols, const at::Tensor& like) {
  return at::from_blob(const_cast<T*>(data), {rows, cols}, like.options());
}

// y (rows, n) = a (rows, k) w^T [+ bias], with w (n, k): the recurrent product h W_hh^T + b_hh of one step.
// Raw pointers: small products (the common case at small sizes) then cost no tensor at all.
template <typename T>
void product_nt(T* y, const T* a, int64_t rows, const StepWeight& weight, const T* bias) {
  const at::Tensor& w = weight.w;
  const int64_t k = w.size(1), n = w.size(0);
  if (rows * n * k > SMALL_PRODUCT) {
    at::Tensor out = rows_view(y, rows, n, w), in = rows_view(a, rows, k, w);
    c10::optional<at::Tensor> b;
    if (bias) b = rows_view(bias, 1, n, w).view({n});
    if (weight.packed.defined()) {
      out.copy_(onednn().apply(in, weight.packed, b));
    } else if (bias) {
      at::addmm_out(out, *b, in, w.t());
    } else {
      at::mm_out(out, in, w.t());
    }
    return;
  }
  const T* wp = w.data_ptr<T>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      T sum = bias ? bias[j] : T(0);
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < k; ++i) sum += a[r * k + i] * wp[j * k + i];
      y[r * n + j] = sum;
    }
  }
}

// y (rows, n) = a (rows, k) w, with w (k, n): the gradient d_h_proj W_hh reaching h_{t-1}. `transposed` is
// step_weight(w^T), for oneDNN.
template <typename T>
void product_nn(T* y, const T* a, int64_t rows, const at::Tensor& w, const StepWeight& transposed) {
  const int64_t k = w.size(0), n = w.size(1);
  if (rows * n * k > SMALL_PRODUCT) {
    at::Tensor out = rows_view(y, rows, n, w), in = rows_view(a, rows, k, w);
    if (transposed.packed.defined()) {
      out.copy_(onednn().apply(in, transposed.packed, c10::nullopt));
    } else {
      at::mm_out(out, in, w);
    }
    return;
  }
  const T* wp = w.data_ptr<T>();
  for (int64_t r = 0; r < rows; ++r) {
    T* y_row = y + r * n;
    std::fill(y_row, y_row + n, T(0));
    for (int64_t i = 0; i < k; ++i) {
      const T scale = a[r * k + i];
      const T* w_row = wp + i * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y_row[j] += scale * w_row[j];
    }
  }
}

// a (M, K) b (K, N) for the weight and input gradients of the whole sequence. BLAS ran such products with
// few output columns (N <= 32) 1.1-3x slower than the same product transposed, (b^T a^T)^T, once a has 64k
// entries or more (measured here: dW_ih and dx with 5 or 28 input features, dW_hh with 10 units; below
// that size the transposed copy cost more than it saved); so those are computed that way.
at::Tensor product(const at::Tensor& a, const at::Tensor& b) {
  if (b.size(1) <= 32 && a.numel() >= (1 << 16) && a.size(0) > b.size(1)) return at::mm(b.t(), a.t()).t().contiguous();
  return at::mm(a, b);
}

// Column sums of a * b, both (rows, cols): a layer norm gain's gradient, sum over rows of dy * v_hat, without
// the (rows, cols) product that (a * b).sum(0) would allocate (fresh memory costs page faults).
template <typename T>
void column_dot_into(int64_t rows, int64_t cols, const T* a, const T* b, T* sum) {
  at::parallel_for(0, cols, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < rows; ++r) {
      const T *a_row = a + r * cols, *b_row = b + r * cols;
#pragma omp simd
      for (int64_t j = begin; j < end; ++j) sum[j] += a_row[j] * b_row[j];
    }
  });
}

at::Tensor column_dot(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor out = at::zeros({a.size(1)}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnlab_column_dot", [&] {
    column_dot_into<scalar_t>(a.size(0), a.size(1), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                              out.data_ptr<scalar_t>());
  });
  return out;
}

// Mean and 1 / sqrt(var + eps) of n values: layer normalisation's statistics of one row.
constexpr double NORM_EPS = 1e-5;

template <typename T>
void row_stats(int64_t n, const T* v, T& mean, T& rstd) {
  T sum = 0, square = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t k = 0; k < n; ++k) sum += v[k];
  mean = sum / T(n);
#pragma omp simd reduction(+ : square)
  for (int64_t k = 0; k < n; ++k) square += (v[k] - mean) * (v[k] - mean);
  rstd = T(1) / std::sqrt(square / T(n) + T(NORM_EPS));
}

// Layer normalisation of `rows` rows of n values each, in place: v <- v_hat * gain + shift [+ bias] with
// v_hat = (v - mean) * rstd. v_hat (rows, n) and rstd (rows) keep what backward needs, where given.
template <typename T>
void norm_rows(int64_t rows, int64_t n, T* v, const T* gain, const T* shift, const T* bias, T* v_hat, T* rstd) {
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      T* row = v + r * n;
      T mean, inv;
      row_stats(n, row, mean, inv);
      if (v_hat) {
        T* hat = v_hat + r * n;
#pragma omp simd
        for (int64_t k = 0; k < n; ++k) hat[k] = (row[k] - mean) * inv;
        rstd[r] = inv;
      }
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) row[k] = (row[k] - mean) * inv * gain[k] + shift[k] + (bias ? bias[k] : T(0));
    }
  });
}

// Its backward for one row: dv = rstd * (dy g - mean(dy g) - v_hat mean(dy g v_hat)); dv may be dy.
template <typename T>
void norm_row_backward(int64_t n, const T* dy, const T* hat, T rstd, const T* gain, T* dv) {
  T sum = 0, dot = 0;
#pragma omp simd reduction(+ : sum, dot)
  for (int64_t k = 0; k < n; ++k) {
    sum += dy[k] * gain[k];
    dot += dy[k] * gain[k] * hat[k];
  }
  const T mean = sum / T(n), mean_dot = dot / T(n);
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) dv[k] = rstd * (dy[k] * gain[k] - mean - hat[k] * mean_dot);
}

template <typename T>
void norm_rows_backward(int64_t rows, int64_t n, const T* dy, const T* v_hat, const T* rstd, const T* gain, T* dv) {
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) norm_row_backward(n, dy + r * n, v_hat + r * n, rstd[r], gain, dv + r * n);
  });
}

template <typename T>
struct CellStep {
  const T *xp, *hp, *h_prev;
  int64_t P;
  T *c, *c_prev_out, *cand, *m, *act, *hn;
  const T *zone_c, *ln_gain, *ln_shift;
  T *c_hat, *c_rstd;
};

// Which hidden units [first, end) a row step computes, and where the recurrent product of unit k's gate g
// lies in its rows of hp: hp[b * stride + g * gate + k - first]. The whole row: {0, H, 4H, H}; a block of
// units whose product a thread made on its own (lstm_forward_split): {first, end, 4 (end - first), end - first}.
struct Units {
  int64_t first, end, stride, gate;
};

// LSTM's step for row b and `units`; NORM: h' = o * tanh(LN_c(c')) (whole rows only), ZONE: zoneout on c
// (compile-time, as in backward).
template <typename T, bool NORM, bool ZONE>
void lstm_forward_row(int64_t H, int64_t b, const CellStep<T>& s, const Units& units) {
  const int64_t first = units.first, end = units.end, gh = units.gate;
  const T* x_row = s.xp + b * 4 * H;
  const T* h_row = s.hp + b * units.stride - first;  // unit k of gate g at h_row[g * gh + k]
  T* a = s.act + b * 4 * H;
  T* m = s.m + b * H;
  T* c = s.c + b * H;
  T* cand = s.cand + b * H;
  const T* zone = ZONE ? s.zone_c + b * H : nullptr;
  if (s.c_prev_out) std::copy(c + first, c + end, s.c_prev_out + b * H + first);
#pragma omp simd
  for (int64_t k = first; k < end; ++k) {
    T i = sigmoid(x_row[k] + h_row[k]);
    T f = sigmoid(x_row[H + k] + h_row[gh + k]);
    T g = std::tanh(x_row[2 * H + k] + h_row[2 * gh + k]);
    T o = sigmoid(x_row[3 * H + k] + h_row[3 * gh + k]);
    T c_new = f * c[k] + i * g;  // c' = f * c + i * g
    if constexpr (NORM) {
      cand[k] = c_new;  // LN_c's input, below
    } else {
      T tanh_c = std::tanh(c_new);
      cand[k] = tanh_c;  // kept for backward, which then needs no tanh of its own
      m[k] = o * tanh_c;  // h' = o * tanh(c')
    }
    c[k] = ZONE ? zone[k] * c[k] + (T(1) - zone[k]) * c_new : c_new;  // zoneout: c_t = d c_{t-1} + (1 - d) c'
    a[k] = i;
    a[H + k] = f;
    a[2 * H + k] = g;
    a[3 * H + k] = o;
  }
  if constexpr (NORM) {  // h' = o * tanh(LN_c(c'))
    T mean, inv;
    row_stats(H, cand, mean, inv);
    if (s.c_hat) {  // v_hat and rstd, for backward
      T* hat = s.c_hat + b * H;
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) hat[k] = (cand[k] - mean) * inv;
      s.c_rstd[b] = inv;
    }
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) m[k] = a[3 * H + k] * std::tanh((cand[k] - mean) * inv * s.ln_gain[k] + s.ln_shift[k]);
  }
}

// Below this many hidden units an LSTM row leaves most of each vector unused (10 units: one 8-wide vector and
// two scalar remainders per gate), so the plain LSTM step takes blocks of rows gate-major instead (below).
constexpr int64_t FLAT_UNITS = 32;  // the most units the blocks hold
int64_t flat_below = FLAT_UNITS;  // set_flat_below (tests: 0 runs every row whole)
constexpr int64_t FLAT_ROWS = 32;  // rows per block: 4 gates x 32 rows x 31 units stay in L1

// A block of rows gate by gate: rows [b0, b0 + rows) of a (., 4H) array in row order (with `plus`, the sum of
// two such arrays) into to[g] (rows x H) -- and back.
template <typename T>
void gather_gates(int64_t H, int64_t b0, int64_t rows, const T* from, const T* plus, T (*to)[FLAT_ROWS * FLAT_UNITS]) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < 4; ++g) {
      const int64_t at = (b0 + r) * 4 * H + g * H;
      for (int64_t k = 0; k < H; ++k) to[g][r * H + k] = plus ? from[at + k] + plus[at + k] : from[at + k];
    }
}

template <typename T>
void scatter_gates(int64_t H, int64_t b0, int64_t rows, const T (*from)[FLAT_ROWS * FLAT_UNITS], T* to) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < 4; ++g) std::copy(from[g] + r * H, from[g] + (r + 1) * H, to + (b0 + r) * 4 * H + g * H);
}

// The plain LSTM's step for rows [begin, end) with H < flat_below: each block of rows has its pre-activations
// gathered gate by gate into pre[g] (rows x H, in the order of c and h), so that the cell's equations run as
// one vectorized loop over rows x units; the gates then go back to act in row order. ZONE: zoneout on c.
template <typename T, bool ZONE>
void lstm_forward_flat(int64_t H, int64_t begin, int64_t end, const CellStep<T>& s) {
  T pre[4][FLAT_ROWS * FLAT_UNITS];
  for (int64_t b0 = begin; b0 < end; b0 += FLAT_ROWS) {
    const int64_t rows = std::min(FLAT_ROWS, end - b0), n = rows * H;
    gather_gates(H, b0, rows, s.xp, s.hp, pre);  // the pre-activations x W_ih^T + b_ih + h W_hh^T + b_hh
    T *c = s.c + b0 * H, *cand = s.cand + b0 * H, *m = s.m + b0 * H;
    const T* zone = ZONE ? s.zone_c + b0 * H : nullptr;
    if (s.c_prev_out) std::copy(c, c + n, s.c_prev_out + b0 * H);
#pragma omp simd
    for (int64_t e = 0; e < n; ++e) {
      T i = sigmoid(pre[0][e]), f = sigmoid(pre[1][e]), g = std::tanh(pre[2][e]), o = sigmoid(pre[3][e]);
      T c_new = f * c[e] + i * g;  // c' = f * c + i * g
      T tanh_c = std::tanh(c_new);
      cand[e] = tanh_c;
      m[e] = o * tanh_c;  // h' = o * tanh(c')
      c[e] = ZONE ? zone[e] * c[e] + (T(1) - zone[e]) * c_new : c_new;
      pre[0][e] = i, pre[1][e] = f, pre[2][e] = g, pre[3][e] = o;
    }
    scatter_gates(H, b0, rows, pre, s.act);
  }
}

template <typename T>
void cell_forward(int64_t mode, int64_t size, int64_t H, const CellStep<T>& s) {
  const int64_t G = gates_of(mode);
  if (G == 1) {  // the plain RNN: one gate, so the step's rows are one block, run as one vectorized loop
    at::parallel_for(0, size * H, 4096, [&](int64_t begin, int64_t end) {
      if (mode == RNN_TANH) {
#pragma omp simd
        for (int64_t e = begin; e < end; ++e) s.m[e] = s.act[e] = std::tanh(s.xp[e] + s.hp[e]);  // h' = tanh(pre)
      } else {
#pragma omp simd
        for (int64_t e = begin; e < end; ++e) {
          T pre = s.xp[e] + s.hp[e];
          s.m[e] = s.act[e] = pre > T(0) ? pre : T(0);  // h' = relu(pre)
        }
      }
    });
    return;
  }
  if (mode == LSTM && !s.ln_gain && H < flat_below) {
    at::parallel_for(0, size, FLAT_ROWS, [&](int64_t begin, int64_t end) {
      if (s.zone_c) lstm_forward_flat<T, true>(H, begin, end, s); else lstm_forward_flat<T, false>(H, begin, end, s);
    });
    return;
  }
  const Units all{0, H, G * H, H};
  at::parallel_for(0, size, 16, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* x_row = s.xp + b * G * H;
      const T* h_row = s.hp + b * G * H;
      T* a = s.act + b * G * H;
      T* m_row = s.m + b * H;
      if (mode == LSTM) {
        if (s.ln_gain) {
          if (s.zone_c) lstm_forward_row<T, true, true>(H, b, s, all); else lstm_forward_row<T, true, false>(H, b, s, all);
        } else {
          if (s.zone_c) lstm_forward_row<T, false, true>(H, b, s, all); else lstm_forward_row<T, false, false>(H, b, s, all);
        }
      } else if (mode == GRU) {
        const T* hp_row = s.h_prev + b * s.P;
        T* hn_row = s.hn + b * H;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          T r = sigmoid(x_row[k] + h_row[k]);
          T z = sigmoid(x_row[H + k] + h_row[H + k]);
          T n = std::tanh(x_row[2 * H + k] + r * h_row[2 * H + k]);  // b_hn inside the reset product
          m_row[k] = (T(1) - z) * n + z * hp_row[k];  // h' = (1 - z) * n + z * h
          a[k] = r;
          a[H + k] = z;
          a[2 * H + k] = n;
          hn_row[k] = h_row[2 * H + k];
        }
      }
    }
  });
}
// The cell's backward step for `size` rows. dm (size, H): gradient at the new hidden state; dc (size, H):
// gradient at c_t, overwritten with the gradient at c_{t-1}; dxp, dhp (size, G*H): gradients at the
// pre-activations (dhp differs from dxp only for GRU); direct (size, H): GRU's z * dh reaching h_{t-1}.
// LSTM reads act, cand (tanh(c'), or with LN_c c' itself), c_prev, and with zoneout zone_c, with LN_c the gain, c_hat and
// c_rstd, writing dc_out (size, H), the gradient at LN_c's output, for the gain and shift gradients.
template <typename T>
struct CellGrad {
  const T *dm, *act, *cand, *c_prev, *hn, *h_prev;
  int64_t P;
  T *dc, *dxp, *dhp, *direct;
  const T *zone_c, *ln_gain, *ln_shift, *c_hat, *c_rstd;
  T* dc_out;
};

// LSTM's backward step for row b and units [first, end); NORM: with LN_c (whole rows only), ZONE: with
// zoneout on c (compile-time, so that the loops stay branch-free and vectorize).
template <typename T, bool NORM, bool ZONE>
void lstm_backward_row(int64_t H, int64_t b, const CellGrad<T>& s, int64_t first, int64_t end) {
  const T* a = s.act + b * 4 * H;
  const T* dm = s.dm + b * H;
  const T* cand = s.cand + b * H;
  const T* c_prev = s.c_prev + b * H;
  const T* zone = ZONE ? s.zone_c + b * H : nullptr;
  const T* hat = NORM ? s.c_hat + b * H : nullptr;
  const T *gain = s.ln_gain, *shift = s.ln_shift;
  T* dc = s.dc + b * H;
  T* dx = s.dxp + b * 4 * H;
  if constexpr (NORM) {  // gradient at tanh's input (kept in dc_out), then back through LN_c into dx[0, H)
    T* dy = s.dc_out + b * H;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      T t = std::tanh(hat[k] * gain[k] + shift[k]);
      dy[k] = dm[k] * a[3 * H + k] * (T(1) - t * t);
    }
    norm_row_backward(H, dy, hat, s.c_rstd[b], gain, dx);
  }
#pragma omp simd
  for (int64_t k = first; k < end; ++k) {
    T i = a[k], f = a[H + k], g = a[2 * H + k], o = a[3 * H + k];
    T tanh_c, via_h;  // tanh of what h' = o * tanh(.) reads, and the gradient reaching c' through h
    if constexpr (NORM) {
      tanh_c = std::tanh(hat[k] * gain[k] + shift[k]);
      via_h = dx[k];
    } else {
      tanh_c = cand[k];  // tanh(c'), as forward kept it
      via_h = dm[k] * o * (T(1) - tanh_c * tanh_c);
    }
    T keep = ZONE ? zone[k] : T(0);
    T d_cand = (T(1) - keep) * dc[k] + via_h;  // c' reaches the loss through c_t and through h
    T di = d_cand * g, df = d_cand * c_prev[k], dg = d_cand * i, d_o = dm[k] * tanh_c;
    dc[k] = d_cand * f + keep * dc[k];
    dx[k] = di * i * (T(1) - i);
    dx[H + k] = df * f * (T(1) - f);
    dx[2 * H + k] = dg * (T(1) - g * g);
    dx[3 * H + k] = d_o * o * (T(1) - o);
  }
}

// Backward of lstm_forward_flat: the gates of a block of rows are gathered gate-major into a[g], the
// gradients at the pre-activations computed in one vectorized loop, and put back in row order in dxp.
template <typename T, bool ZONE>
void lstm_backward_flat(int64_t H, int64_t begin, int64_t end, const CellGrad<T>& s) {
  T a[4][FLAT_ROWS * FLAT_UNITS];
  for (int64_t b0 = begin; b0 < end; b0 += FLAT_ROWS) {
    const int64_t rows = std::min(FLAT_ROWS, end - b0), n = rows * H;
    gather_gates<T>(H, b0, rows, s.act, nullptr, a);
    const T *dm = s.dm + b0 * H, *cand = s.cand + b0 * H, *c_prev = s.c_prev + b0 * H;
    const T* zone = ZONE ? s.zone_c + b0 * H : nullptr;
    T* dc = s.dc + b0 * H;
#pragma omp simd
    for (int64_t e = 0; e < n; ++e) {
      T i = a[0][e], f = a[1][e], g = a[2][e], o = a[3][e], tanh_c = cand[e];
      T keep = ZONE ? zone[e] : T(0);
      T d_cand = (T(1) - keep) * dc[e] + dm[e] * o * (T(1) - tanh_c * tanh_c);  // through c_t and through h
      dc[e] = d_cand * f + keep * dc[e];
      a[0][e] = d_cand * g * i * (T(1) - i);
      a[1][e] = d_cand * c_prev[e] * f * (T(1) - f);
      a[2][e] = d_cand * i * (T(1) - g * g);
      a[3][e] = dm[e] * tanh_c * o * (T(1) - o);
    }
    scatter_gates(H, b0, rows, a, s.dxp);
  }
}

template <typename T>
void cell_backward(int64_t mode, int64_t size, int64_t H, const CellGrad<T>& s) {
  const int64_t G = gates_of(mode);
  if (G == 1) {  // the plain RNN, as one block: tanh' = 1 - h^2, relu' = 1 where h > 0
    at::parallel_for(0, size * H, 4096, [&](int64_t begin, int64_t end) {
      if (mode == RNN_TANH) {
#pragma omp simd
        for (int64_t e = begin; e < end; ++e) s.dxp[e] = s.dm[e] * (T(1) - s.act[e] * s.act[e]);
      } else {
#pragma omp simd
        for (int64_t e = begin; e < end; ++e) s.dxp[e] = s.act[e] > T(0) ? s.dm[e] : T(0);
      }
    });
    return;
  }
  if (mode == LSTM && !s.ln_gain && H < flat_below) {
    at::parallel_for(0, size, FLAT_ROWS, [&](int64_t begin, int64_t end) {
      if (s.zone_c) lstm_backward_flat<T, true>(H, begin, end, s); else lstm_backward_flat<T, false>(H, begin, end, s);
    });
    return;
  }
  at::parallel_for(0, size, 16, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* a = s.act + b * G * H;
      const T* dm_row = s.dm + b * H;
      T* dx = s.dxp + b * G * H;
      if (mode == LSTM) {
        if (s.ln_gain) {
          if (s.zone_c) lstm_backward_row<T, true, true>(H, b, s, 0, H); else lstm_backward_row<T, true, false>(H, b, s, 0, H);
        } else {
          if (s.zone_c) lstm_backward_row<T, false, true>(H, b, s, 0, H); else lstm_backward_row<T, false, false>(H, b, s, 0, H);
        }
      } else if (mode == GRU) {
        T* dh = s.dhp + b * G * H;
        const T* hp_row = s.h_prev + b * s.P;
        const T* hn_row = s.hn + b * H;
        T* direct_row = s.direct + b * H;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          T r = a[k], z = a[H + k], n = a[2 * H + k];
          T dn_pre = dm_row[k] * (T(1) - z) * (T(1) - n * n);
          T dz_pre = dm_row[k] * (hp_row[k] - n) * z * (T(1) - z);
          T dr_pre = dn_pre * hn_row[k] * r * (T(1) - r);
          direct_row[k] = dm_row[k] * z;
          dx[k] = dr_pre;
          dx[H + k] = dz_pre;
          dx[2 * H + k] = dn_pre;
          dh[k] = dr_pre;
          dh[H + k] = dz_pre;
          dh[2 * H + k] = dn_pre * r;
        }
      }
    }
  });
}

// ---- the plain LSTM with its hidden units split between the cores --------------------------------------
// Each of `parts` threads owns a block of hidden units: the rows of W_hh that make its units' four gates,
// its columns of h, c and every kept block. A forward step is one product per thread (the whole h_{t-1}
// times its rows, single-threaded) and then its units' cell step, with one barrier per step; backward is
// its units' cell step, a barrier, and its columns of dh_{t-1} = d_pre W_hh. Measured here on 2 cores:
// two half products ran 1.1-1.3x faster than one product on both cores (BLAS' own threading), and the cell
// step needs no fork of its own (LSTM step 1.06-1.10x faster at hidden 128 and 256). From 512 units the
// loop above, with oneDNN's packed weights, measured faster (the split: 0.95-0.99x). No layer norm (its
// statistics span all units), projection or recurrent dropout: those take the loop above.

int64_t split_from = 64, split_to = ONEDNN_FROM;  // hidden sizes split between threads: [split_from, split_to)

int64_t split_team = 0;  // > 0: at most this many threads for the blocks (tests: one thread takes them all)

// The threads to ask for; a region nested in another may get fewer, and then each thread takes several blocks.
int64_t team_for(int64_t parts) { return split_team > 0 ? std::min(parts, split_team) : parts; }

int64_t split_parts(int64_t H) {
  const int64_t threads = at::get_num_threads();
  return threads > 1 && H >= split_from && H < split_to ? std::min(threads, H) : 1;
}

// An exception may not leave an OpenMP region: the first is kept, the threads skip the rest of the work
// (still meeting at every barrier), and it is thrown again after the region.
struct Failure {
  std::atomic<bool> happened{false};
  std::exception_ptr error;
  void keep(std::exception_ptr e) {
#pragma omp critical(rnnlab_failure)
    if (!happened) error = e, happened = true;
  }
  void rethrow() const {
    if (error) std::rethrow_exception(error);
  }
};

// Thread p's units [first, end) when H units are shared by `parts` threads.
std::pair<int64_t, int64_t> unit_block(int64_t H, int64_t parts, int64_t p) {
  const int64_t width = (H + parts - 1) / parts, first = std::min(H, p * width);
  return {first, std::min(H, first + width)};
}

// `base` holds the whole-call pointers (x_proj with b_hh folded in, c, and the blocks kept for backward);
// h (B, H) is the state, updated to h_n; zone_h, zone_c: zoneout's weights (null when off).
template <typename T>
void lstm_forward_split(const std::vector<std::pair<int64_t, int64_t>>& rows, bool keep, int64_t B, int64_t H,
                        const at::Tensor& w_hh, const CellStep<T>& base, T* h, T* out, T* h_prev, const T* zone_h,
                        bool zone_h_rows, bool zone_c_rows, int64_t parts) {
  const auto options = w_hh.options();
  std::vector<at::Tensor> w_part(parts), y_part(parts);  // (H, 4 units) weights and (B, 4 units) products
  for (int64_t p = 0; p < parts; ++p) {
    auto [first, end] = unit_block(H, parts, p);
    std::vector<at::Tensor> gates;
    for (int64_t g = 0; g < 4; ++g) gates.push_back(w_hh.narrow(0, g * H + first, end - first));
    w_part[p] = at::cat(gates).t().contiguous();
    y_part[p] = at::empty({B, 4 * (end - first)}, options);
  }
  at::Tensor spare = at::empty({B, H}, options);
  T* states[2] = {h, spare.data_ptr<T>()};  // h_{t-1} and h_t, swapped each step
  // Block p's share of one step: its product, its units' cell step, its columns of h_t.
  auto step_block = [&](int64_t p, int64_t start, int64_t size, const T* h_old, T* h_next) {
    auto [first, end] = unit_block(H, parts, p);
    const int64_t count = end - first, at_row = keep ? start : 0;
    if (count == 0) return;
    T* y = y_part[p].data_ptr<T>();
    T* h_t = out + start * H;  // (B_t, H)
    if (keep)
      for (int64_t b = 0; b < size; ++b) std::copy(h_old + b * H + first, h_old + b * H + end, h_prev + (start + b) * H + first);
    at::Tensor product = at::from_blob(y, {size, 4 * count}, options);  // (B_t, 4 units)
    at::mm_out(product, at::from_blob(const_cast<T*>(h_old), {size, H}, options), w_part[p]);
    CellStep<T> s = base;
    s.xp = base.xp + start * 4 * H;
    s.hp = y;
    s.c_prev_out = keep ? base.c_prev_out + start * H : nullptr;
    s.cand = base.cand + at_row * H;
    s.m = h_t;
    s.act = base.act + at_row * 4 * H;
    s.zone_c = base.zone_c ? base.zone_c + (zone_c_rows ? start * H : 0) : nullptr;
    const Units units{first, end, 4 * count, count};
    for (int64_t b = 0; b < size; ++b) {
      if (s.zone_c) lstm_forward_row<T, false, true>(H, b, s, units); else lstm_forward_row<T, false, false>(H, b, s, units);
    }
    const T* d = zone_h ? zone_h + (zone_h_rows ? start * H : 0) : nullptr;
    for (int64_t b = 0; b < size; ++b) {
      T* row = h_t + b * H;
      if (d) {  // zoneout: h_t = d h_{t-1} + (1 - d) h~_t
        const T *d_row = d + b * H, *old_row = h_old + b * H;
#pragma omp simd
        for (int64_t k = first; k < end; ++k) row[k] = d_row[k] * old_row[k] + (T(1) - d_row[k]) * row[k];
      }
      std::copy(row + first, row + end, h_next + b * H + first);
    }
    for (int64_t b = size; b < B; ++b) std::copy(h_old + b * H + first, h_old + b * H + end, h_next + b * H + first);
  };
  Failure failure;
#pragma omp parallel num_threads(team_for(parts))
  {
    at::NoGradGuard no_grad;  // a worker thread's own grad mode is on; the products here are plain arithmetic
    const int64_t team = omp_get_num_threads();  // fewer than parts when nested: a thread then takes several
    int64_t now = 0;
    for (auto [start, size] : rows) {
      for (int64_t p = omp_get_thread_num(); p < parts && !failure.happened; p += team) {
        try {
          step_block(p, start, size, states[now], states[1 - now]);
        } catch (...) {
          failure.keep(std::current_exception());
        }
      }
      now = 1 - now;
#pragma omp barrier
    }
  }
  failure.rethrow();
  if (rows.size() % 2) std::copy(states[1], states[1] + B * H, h);
}

// Backward through lstm_forward_split's loop: `base` holds the whole-call pointers; dh (B, H) comes in as the
// gradient at h_n and leaves as the one at h_0; dh_t, kept (B, H) are scratch.
template <typename T>
void lstm_backward_split(const std::vector<std::pair<int64_t, int64_t>>& rows, int64_t H, const at::Tensor& w_hh,
                         const CellGrad<T>& base, T* dh, T* dh_t, T* kept, const T* grad_out, const T* zone_h,
                         bool zone_h_rows, bool zone_c_rows, int64_t parts) {
  const auto options = w_hh.options();
  std::vector<at::Tensor> w_columns(parts);  // (4H, units): W_hh's columns of each block
  for (int64_t p = 0; p < parts; ++p) {
    auto [first, end] = unit_block(H, parts, p);
    w_columns[p] = w_hh.narrow(1, first, end - first);
  }
  // Block p's cell step of one step (its units' share of d_pre), then after the barrier its columns of dh_{t-1}.
  auto cell_block = [&](int64_t p, int64_t start, int64_t size) {
    auto [first, end] = unit_block(H, parts, p);
    const T* d = zone_h ? zone_h + (zone_h_rows ? start * H : 0) : nullptr;
    for (int64_t b = 0; b < size; ++b) {
      const int64_t row = b * H;
      const T* g = grad_out + start * H + row;
#pragma omp simd
      for (int64_t k = first; k < end; ++k) dh_t[row + k] = dh[row + k] + g[k];  // from step t+1 and output t
      if (d) {  // split between the kept previous state and the candidate
#pragma omp simd
        for (int64_t k = first; k < end; ++k) {
          kept[row + k] = d[row + k] * dh_t[row + k];
          dh_t[row + k] *= T(1) - d[row + k];
        }
      }
    }
    CellGrad<T> s = base;
    s.dm = dh_t;
    s.act = base.act + start * 4 * H;
    s.cand = base.cand + start * H;
    s.c_prev = base.c_prev + start * H;
    s.dxp = base.dxp + start * 4 * H;
    s.zone_c = base.zone_c ? base.zone_c + (zone_c_rows ? start * H : 0) : nullptr;
    for (int64_t b = 0; b < size; ++b) {
      if (s.zone_c) lstm_backward_row<T, false, true>(H, b, s, first, end); else lstm_backward_row<T, false, false>(H, b, s, first, end);
    }
  };
  auto state_block = [&](int64_t p, int64_t start, int64_t size) {  // dh_{t-1} = d_pre (B_t, 4H) W_hh (4H, H)
    auto [first, end] = unit_block(H, parts, p);
    if (end == first) return;
    at::Tensor columns = at::from_blob(dh + first, {size, end - first}, {H, 1}, options);  // (B_t, units)
    at::mm_out(columns, at::from_blob(base.dxp + start * 4 * H, {size, 4 * H}, options), w_columns[p]);
    if (zone_h) {
      for (int64_t b = 0; b < size; ++b) {
        T* dh_row = dh + b * H;
        const T* kept_row = kept + b * H;
#pragma omp simd
        for (int64_t k = first; k < end; ++k) dh_row[k] += kept_row[k];
      }
    }
  };
  Failure failure;
#pragma omp parallel num_threads(team_for(parts))
  {
    at::NoGradGuard no_grad;
    const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
      auto [start, size] = *it;
      for (int64_t p = me; p < parts && !failure.happened; p += team) {
        try {
          cell_block(p, start, size);
        } catch (...) {
          failure.keep(std::current_exception());
        }
      }
#pragma omp barrier
      for (int64_t p = me; p < parts && !failure.happened; p += team) {
        try {
          state_block(p, start, size);
        } catch (...) {
          failure.keep(std::current_exception());
        }
      }
    }
  }
  failure.rethrow();
}

// The variants of one layer and direction (each absent when off), as engine.py's RecurrentLayer takes them.
struct Variants {
  c10::optional<at::Tensor> ln_ih_g, ln_ih_s, ln_hh_g, ln_hh_s, ln_c_g, ln_c_s, rd_mask, zone_h, zone_c;
  bool norm() const { return ln_ih_g.has_value(); }
};

// Zoneout weights as (rows, width) blocks: a (1, 1) tensor (evaluation: the constant p) becomes a (B, width)
// block that every step reuses (row offset 0); a per-row (N, width) tensor is read at each step's rows.
at::Tensor zone_block(const c10::optional<at::Tensor>& zone, int64_t B, int64_t width, bool& per_row) {
  if (!zone.has_value()) return at::Tensor();
  per_row = zone->size(0) != 1 || zone->numel() != 1;
  return per_row ? zone->contiguous() : at::full({B, width}, zone->item(), zone->options());
}

template <typename T> T* ptr(const at::Tensor& t) { return t.defined() && t.numel() ? t.data_ptr<T>() : nullptr; }
template <typename T> T* ptr(const c10::optional<at::Tensor>& t) { return t.has_value() ? t->data_ptr<T>() : nullptr; }

}  // namespace

// Returns out (N, P), h_n (B, P), c_n (B, H) (empty unless LSTM), and what backward needs: act (N, G*H),
// cand_all (N, H) (tanh(c'); with layer norm c'), c_prev_all (N, H), hn_all (N, H), h_prev_all (N, P), m_all (N, H), h_in_all (N, P), and
// layer norm's x_hat, x_rstd, hh_hat, hh_rstd, c_hat, c_rstd (empty where unused).
std::vector<at::Tensor> forward(int64_t mode, std::vector<int64_t> batch_sizes, bool reverse, bool keep,
                                const at::Tensor& x, const at::Tensor& h0, const c10::optional<at::Tensor>& c0,
                                const at::Tensor& w_ih, const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                                const c10::optional<at::Tensor>& b_hh, const c10::optional<at::Tensor>& w_hr,
                                Variants v) {
  const int64_t N = x.size(0), B = h0.size(0), P = h0.size(1), G = gates_of(mode), H = w_hh.size(0) / G;
  const bool proj = w_hr.has_value(), lstm = mode == LSTM, norm = v.norm(), dropped = v.rd_mask.has_value();
  auto none = x.new_empty({0});
  auto rows_or_none = [&](bool used, int64_t width) { return used ? x.new_empty({keep ? N : B, width}) : none; };
  auto kept = [&](bool used, at::IntArrayRef shape) { return keep && used ? x.new_empty(shape) : none; };
  at::Tensor x_proj = !norm && b_ih.has_value() ? at::addmm(*b_ih, x, w_ih.t()) : at::mm(x, w_ih.t());  // (N, G*H)
  at::Tensor x_hat = kept(norm, {N, G * H}), x_rstd = kept(norm, {N});
  at::Tensor out = x.new_empty({N, P});
  at::Tensor h = h0.clone();  // (B, P) state, updated in place
  at::Tensor c = lstm ? c0->clone() : none;  // (B, H)
  // act (N, G*H) with keep: written over x_proj, which the cell reads at the same places just before (one
  // block fewer to allocate, and fresh memory costs page faults); without keep: a (B, G*H) scratch block
  at::Tensor act = keep ? x_proj : x.new_empty({B, G * H});
  at::Tensor cand_all = rows_or_none(lstm, H);
  at::Tensor c_prev_all = kept(lstm, {N, H});
  at::Tensor hn_all = rows_or_none(mode == GRU, H);
  at::Tensor h_prev_all = kept(true, {N, P});
  at::Tensor h_in_all = dropped ? rows_or_none(true, P) : none;  // h_{t-1} * mask, as it enters W_hh
  at::Tensor m_all = rows_or_none(proj, H);
  at::Tensor hh_hat = kept(norm, {N, G * H}), hh_rstd = kept(norm, {N});
  at::Tensor c_hat = kept(norm && lstm, {N, H}), c_rstd = kept(norm && lstm, {N});
  at::Tensor h_proj = x.new_empty({B, G * H});
  bool zone_h_rows = false, zone_c_rows = false;
  at::Tensor zone_h = zone_block(v.zone_h, B, P, zone_h_rows), zone_c = zone_block(v.zone_c, B, H, zone_c_rows);
  const int64_t parts = lstm && !norm && !proj && !dropped ? split_parts(H) : 1;
  StepWeight recurrent = parts > 1 ? StepWeight{w_hh, at::Tensor()} : step_weight(w_hh, B);
  StepWeight projection = proj ? step_weight(*w_hr, B) : StepWeight{};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_forward", [&] {
    using T = scalar_t;
    if (norm) norm_rows<T>(N, G * H, ptr<T>(x_proj), ptr<T>(v.ln_ih_g), ptr<T>(v.ln_ih_s), ptr<T>(b_ih),
                           ptr<T>(x_hat), ptr<T>(x_rstd));
    // raw rows from here on: a tensor per step would cost more than a small step's arithmetic
    T *h_data = h.data_ptr<T>(), *hp = h_proj.data_ptr<T>(), *out_data = out.data_ptr<T>();
    T *xp = ptr<T>(x_proj), *c_data = ptr<T>(c), *act_data = ptr<T>(act), *m_data = ptr<T>(m_all);
    T *cand = ptr<T>(cand_all), *c_prev = ptr<T>(c_prev_all), *hn = ptr<T>(hn_all), *h_prev = ptr<T>(h_prev_all);
    T *h_in_data = ptr<T>(h_in_all), *hh_hat_data = ptr<T>(hh_hat), *hh_rstd_data = ptr<T>(hh_rstd);
    T *c_hat_data = ptr<T>(c_hat), *c_rstd_data = ptr<T>(c_rstd), *zone_h_data = ptr<T>(zone_h);
    const T *mask = ptr<T>(v.rd_mask), *bias_hh = norm ? nullptr : ptr<T>(b_hh), *zone_c_data = ptr<T>(zone_c);
    const T *ln_hh_g = ptr<T>(v.ln_hh_g), *ln_hh_s = ptr<T>(v.ln_hh_s), *ln_c_g = ptr<T>(v.ln_c_g);
    const T *ln_c_s = ptr<T>(v.ln_c_s), *b_hh_data = ptr<T>(b_hh);
    if (parts > 1) {
      if (b_hh.has_value()) x_proj.add_(*b_hh);  // each thread's product carries no bias
      CellStep<T> base{xp, nullptr, nullptr, P, c_data, c_prev, cand, nullptr, act_data, nullptr, zone_c_data,
                       nullptr, nullptr, nullptr, nullptr};
      lstm_forward_split<T>(step_rows(batch_sizes, reverse), keep, B, H, w_hh, base, h_data, out_data, h_prev,
                            zone_h_data, zone_h_rows, zone_c_rows, parts);
      return;
    }
    for (auto [start, size] : step_rows(batch_sizes, reverse)) {
      const int64_t at_row = keep ? start : 0;  // where this step's kept rows go
      if (keep) std::copy(h_data, h_data + size * P, h_prev + start * P);
      const T* h_in = h_data;  // (B_t, P)
      if (dropped) {  // recurrent dropout: h_{t-1} * mask enters W_hh
        T* in = h_in_data + at_row * P;
        for (int64_t e = 0; e < size * P; ++e) in[e] = h_data[e] * mask[e];
        h_in = in;
      }
      product_nt<T>(hp, h_in, size, recurrent, bias_hh);  // (B_t, G*H)
      if (norm) norm_rows<T>(size, G * H, hp, ln_hh_g, ln_hh_s, b_hh_data,
                             keep ? hh_hat_data + start * G * H : nullptr, keep ? hh_rstd_data + start : nullptr);
      T* h_new = out_data + start * P;  // (B_t, P)
      T* m = proj ? m_data + at_row * H : h_new;  // (B_t, H)
      CellStep<T> step{xp + start * G * H, hp, h_data, P, c_data,
                       keep && lstm ? c_prev + start * H : nullptr, lstm ? cand + at_row * H : nullptr, m,
                       act_data + at_row * G * H, mode == GRU ? hn + at_row * H : nullptr,
                       zone_c_data ? zone_c_data + (zone_c_rows ? start * H : 0) : nullptr,
                       norm && lstm ? ln_c_g : nullptr, norm && lstm ? ln_c_s : nullptr,
                       keep && norm && lstm ? c_hat_data + start * H : nullptr,
                       keep && norm && lstm ? c_rstd_data + start : nullptr};
      cell_forward<T>(mode, size, H, step);
      if (proj) product_nt<T>(h_new, m, size, projection, nullptr);  // h~_t = W_hr m_t
      if (zone_h_data) {  // zoneout: h_t = d h_{t-1} + (1 - d) h~_t
        const T* d = zone_h_data + (zone_h_rows ? start * P : 0);
        for (int64_t e = 0; e < size * P; ++e) h_new[e] = d[e] * h_data[e] + (T(1) - d[e]) * h_new[e];
      }
      std::copy(h_new, h_new + size * P, h_data);
    }
  });
  return {out, h, c, act, cand_all, c_prev_all, hn_all, h_prev_all, m_all, h_in_all,
          x_hat, x_rstd, hh_hat, hh_rstd, c_hat, c_rstd};
}

// Returns dx (N, D), dh0 (B, P), dc0 (B, H) (empty unless LSTM), dw_ih, dw_hh, db_ih, db_hh, dw_hr, and the
// layer norm gains' and shifts' gradients (ih, hh, c) (empty where absent).
std::vector<at::Tensor> backward(int64_t mode, std::vector<int64_t> batch_sizes, bool reverse,
                                 const at::Tensor& grad_out, const at::Tensor& grad_h_n,
                                 const c10::optional<at::Tensor>& grad_c_n, const at::Tensor& x,
                                 std::vector<at::Tensor> saved, const at::Tensor& w_ih, const at::Tensor& w_hh,
                                 bool has_bias, const c10::optional<at::Tensor>& w_hr, bool needs_dx, Variants v) {
  const auto& act = saved[0], &cand_all = saved[1], &c_prev_all = saved[2], &hn_all = saved[3];
  const auto& h_prev_all = saved[4], &m_all = saved[5], &h_in_all = saved[6], &x_hat = saved[7];
  const auto& x_rstd = saved[8], &hh_hat = saved[9], &hh_rstd = saved[10], &c_hat = saved[11], &c_rstd = saved[12];
  const int64_t N = x.size(0), B = grad_h_n.size(0), G = gates_of(mode), H = w_hh.size(0) / G;
  const int64_t P = grad_h_n.size(1);
  const bool proj = w_hr.has_value(), lstm = mode == LSTM, norm = v.norm(), dropped = v.rd_mask.has_value();
  auto none = x.new_empty({0});
  at::Tensor d_xp = x.new_empty({N, G * H});  // every row is written once, by its step
  at::Tensor d_hp = mode == GRU ? x.new_empty({N, G * H}) : d_xp;  // at LN_hh's output (the pre-activation)
  at::Tensor d_hw = norm ? x.new_empty({N, G * H}) : d_hp;  // at W_hh h's output
  at::Tensor dc_out = norm && lstm ? x.new_empty({N, H}) : none;  // at LN_c's output
  at::Tensor dh_all = proj ? x.new_empty({N, P}) : none;
  at::Tensor dh = grad_h_n.clone();  // (B, P) gradient at the state after the last step
  at::Tensor dc = lstm ? grad_c_n->clone() : none;  // (B, H)
  at::Tensor dh_t = x.new_empty({B, P});
  at::Tensor dh_kept = x.new_empty({B, P});
  at::Tensor dm = proj ? x.new_empty({B, H}) : dh_t;
  at::Tensor direct = mode == GRU ? x.new_empty({B, H}) : none;
  bool zone_h_rows = false, zone_c_rows = false;
  at::Tensor zone_h = zone_block(v.zone_h, B, P, zone_h_rows), zone_c = zone_block(v.zone_c, B, H, zone_c_rows);
  auto rows = step_rows(batch_sizes, reverse);
  const int64_t parts = lstm && !norm && !proj && !dropped ? split_parts(H) : 1;
  StepWeight recurrent_t = parts > 1 ? StepWeight{} : step_weight(w_hh.t().contiguous(), B);
  StepWeight projection_t = proj ? step_weight(w_hr->t().contiguous(), B) : StepWeight{};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_backward", [&] {
    using T = scalar_t;
    T *dh_data = dh.data_ptr<T>(), *dh_t_data = dh_t.data_ptr<T>(), *kept = dh_kept.data_ptr<T>();
    T *dm_data = dm.data_ptr<T>(), *dc_data = ptr<T>(dc), *dxp = d_xp.data_ptr<T>(), *dhp = d_hp.data_ptr<T>();
    T *dhw = d_hw.data_ptr<T>(), *direct_data = ptr<T>(direct), *dh_all_data = ptr<T>(dh_all);
    T *dc_out_data = ptr<T>(dc_out);
    const T *grad_out_data = grad_out.data_ptr<T>(), *act_data = act.data_ptr<T>(), *cand = ptr<T>(cand_all);
    const T *c_prev = ptr<T>(c_prev_all), *hn = ptr<T>(hn_all), *h_prev = ptr<T>(h_prev_all);
    const T *zone_h_data = ptr<T>(zone_h), *zone_c_data = ptr<T>(zone_c), *mask = ptr<T>(v.rd_mask);
    const T *ln_c_g = ptr<T>(v.ln_c_g), *ln_c_s = ptr<T>(v.ln_c_s), *c_hat_data = ptr<T>(c_hat);
    const T *c_rstd_data = ptr<T>(c_rstd), *hh_hat_data = ptr<T>(hh_hat), *hh_rstd_data = ptr<T>(hh_rstd);
    const T* ln_hh_g = ptr<T>(v.ln_hh_g);
    if (parts > 1) {
      CellGrad<T> base{nullptr, act_data, cand, c_prev, nullptr, nullptr, P, dc_data, dxp, nullptr, nullptr,
                       zone_c_data, nullptr, nullptr, nullptr, nullptr, nullptr};
      lstm_backward_split<T>(rows, H, w_hh, base, dh_data, dh_t_data, kept, grad_out_data, zone_h_data, zone_h_rows,
                             zone_c_rows, parts);
      return;
    }
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
      auto [start, size] = *it;
      for (int64_t e = 0; e < size * P; ++e) dh_t_data[e] = dh_data[e] + grad_out_data[start * P + e];  // t+1, output t
      if (zone_h_data) {  // split between the kept previous state and the candidate
        const T* d = zone_h_data + (zone_h_rows ? start * P : 0);
        for (int64_t e = 0; e < size * P; ++e) {
          kept[e] = d[e] * dh_t_data[e];
          dh_t_data[e] *= T(1) - d[e];
        }
      }
      if (proj) {
        std::copy(dh_t_data, dh_t_data + size * P, dh_all_data + start * P);
        product_nn<T>(dm_data, dh_t_data, size, *w_hr, projection_t);  // back through the projection
      }
      const bool ln_c = norm && lstm;
      CellGrad<T> grad{dm_data, act_data + start * G * H, lstm ? cand + start * H : nullptr,
                       lstm ? c_prev + start * H : nullptr, mode == GRU ? hn + start * H : nullptr,
                       h_prev + start * P, P, dc_data, dxp + start * G * H,
                       mode == GRU ? dhp + start * G * H : nullptr, direct_data,
                       zone_c_data ? zone_c_data + (zone_c_rows ? start * H : 0) : nullptr,
                       ln_c ? ln_c_g : nullptr, ln_c ? ln_c_s : nullptr, ln_c ? c_hat_data + start * H : nullptr,
                       ln_c ? c_rstd_data + start : nullptr, ln_c ? dc_out_data + start * H : nullptr};
      cell_backward<T>(mode, size, H, grad);
      if (norm) norm_rows_backward<T>(size, G * H, dhp + start * G * H, hh_hat_data + start * G * H,
                                      hh_rstd_data + start, ln_hh_g, dhw + start * G * H);
      product_nn<T>(dh_data, dhw + start * G * H, size, w_hh, recurrent_t);  // dh_{t-1} via W_hh
      if (dropped) {
        for (int64_t e = 0; e < size * P; ++e) dh_data[e] *= mask[e];
      }
      if (mode == GRU) {
        for (int64_t e = 0; e < size * P; ++e) dh_data[e] += direct_data[e];  // and around it (z * h_{t-1})
      }
      if (zone_h_data) {
        for (int64_t e = 0; e < size * P; ++e) dh_data[e] += kept[e];
      }
    }
  });
  at::Tensor db_ih = has_bias || norm ? d_xp.sum(0) : none;
  at::Tensor db_hh = has_bias || norm ? (mode == GRU ? d_hp.sum(0) : db_ih.clone()) : none;  // d_hp is d_xp but in GRU
  std::vector<at::Tensor> norm_grads(6, none);
  if (norm) {
    norm_grads = {column_dot(d_xp, x_hat), db_ih, column_dot(d_hp, hh_hat), db_hh, none, none};
    if (lstm) norm_grads[4] = column_dot(dc_out, c_hat), norm_grads[5] = dc_out.sum(0);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_norm_backward", [&] {
      using T = scalar_t;  // back through LN_ih, in place: nothing reads d_xp (or the LSTM's d_hp, the same) after
      norm_rows_backward<T>(N, G * H, d_xp.data_ptr<T>(), ptr<T>(x_hat), ptr<T>(x_rstd), ptr<T>(v.ln_ih_g),
                            d_xp.data_ptr<T>());
    });
  }
  // d_xp is now the gradient at W_ih x (with layer norm: LN_ih's backward ran in place above)
  at::Tensor dx = needs_dx ? product(d_xp, w_ih) : none;
  at::Tensor dw_ih = product(d_xp.t(), x);
  at::Tensor dw_hh = product(d_hw.t(), dropped ? h_in_all : h_prev_all);
  at::Tensor dw_hr = proj ? product(dh_all.t(), m_all) : none;
  std::vector<at::Tensor> grads{dx, dh, dc, dw_ih, dw_hh, has_bias ? db_ih : none, has_bias ? db_hh : none, dw_hr};
  grads.insert(grads.end(), norm_grads.begin(), norm_grads.end());
  return grads;
}

// ---- checkpoint_steps: keep the state only at the start of each segment of K steps ------------------------

// A segment of steps [first, end) and its rows [row0, row1), in packed layout.
struct Segment {
  int64_t first, end, row0, row1;
};

// The segments of `steps` steps each, in the order the loop visits them.
std::vector<Segment> segments_of(const std::vector<int64_t>& batch_sizes, int64_t steps, bool reverse) {
  std::vector<int64_t> offsets{0};
  for (int64_t size : batch_sizes) offsets.push_back(offsets.back() + size);
  std::vector<Segment> segments;
  const int64_t T = batch_sizes.size();
  for (int64_t first = 0; first < T; first += steps) {
    const int64_t end = std::min(first + steps, T);
    segments.push_back({first, end, offsets[first], offsets[end]});
  }
  if (reverse) std::reverse(segments.begin(), segments.end());
  return segments;
}

// The variants as one segment sees them: its sequences' recurrent dropout rows, its rows of zoneout's masks.
Variants segment_variants(const Variants& v, int64_t batch, const Segment& seg) {
  Variants part = v;
  if (v.rd_mask.has_value()) part.rd_mask = v.rd_mask->narrow(0, 0, batch);
  for (auto* zone : {&part.zone_h, &part.zone_c}) {
    if (zone->has_value() && (*zone)->numel() != 1) *zone = (*zone)->narrow(0, seg.row0, seg.row1 - seg.row0);
  }
  return part;
}

// forward without keeping activations, but with the state (h, c) at the start of every segment:
// returns out (N, P), h_n, c_n, states_h (S, B, P), states_c (S, B, H) (empty unless LSTM).
std::vector<at::Tensor> forward_checkpointed(int64_t mode, const std::vector<int64_t>& batch_sizes, bool reverse,
                                             const at::Tensor& x, const at::Tensor& h0,
                                             const c10::optional<at::Tensor>& c0, const at::Tensor& w_ih,
                                             const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                                             const c10::optional<at::Tensor>& b_hh,
                                             const c10::optional<at::Tensor>& w_hr, const Variants& v, int64_t steps) {
  const bool lstm = mode == LSTM;
  auto segments = segments_of(batch_sizes, steps, reverse);
  const int64_t S = segments.size(), B = h0.size(0);
  at::Tensor out = x.new_empty({x.size(0), h0.size(1)});
  at::Tensor h = h0.clone(), c = lstm ? c0->clone() : x.new_empty({0});
  at::Tensor states_h = x.new_empty({S, B, h0.size(1)});
  at::Tensor states_c = lstm ? x.new_empty({S, B, c.size(1)}) : x.new_empty({0});
  for (int64_t k = 0; k < S; ++k) {
    const Segment& seg = segments[k];
    const int64_t batch = batch_sizes[seg.first];  // the segment's widest step: sizes never grow
    states_h[k].copy_(h);
    if (lstm) states_c[k].copy_(c);
    std::vector<int64_t> sizes(batch_sizes.begin() + seg.first, batch_sizes.begin() + seg.end);
    auto r = forward(mode, sizes, reverse, false, x.narrow(0, seg.row0, seg.row1 - seg.row0), h.narrow(0, 0, batch),
                     lstm ? c10::optional<at::Tensor>(c.narrow(0, 0, batch)) : c10::nullopt, w_ih, w_hh, b_ih, b_hh,
                     w_hr, segment_variants(v, batch, seg));
    out.narrow(0, seg.row0, seg.row1 - seg.row0).copy_(r[0]);
    h.narrow(0, 0, batch).copy_(r[1]);
    if (lstm) c.narrow(0, 0, batch).copy_(r[2]);
  }
  return {out, h, c, states_h, states_c};
}

// backward segment by segment, last visited first: each segment's forward runs again from its saved state,
// keeping what its backward needs, then that backward; the weight gradients add up. Returns as backward.
std::vector<at::Tensor> backward_checkpointed(int64_t mode, const std::vector<int64_t>& batch_sizes, bool reverse,
                                              const at::Tensor& grad_out, const at::Tensor& grad_h_n,
                                              const c10::optional<at::Tensor>& grad_c_n, const at::Tensor& x,
                                              const at::Tensor& states_h, const at::Tensor& states_c,
                                              const at::Tensor& w_ih, const at::Tensor& w_hh,
                                              const c10::optional<at::Tensor>& b_ih,
                                              const c10::optional<at::Tensor>& b_hh,
                                              const c10::optional<at::Tensor>& w_hr, bool needs_dx, const Variants& v,
                                              int64_t steps) {
  const bool lstm = mode == LSTM;
  auto segments = segments_of(batch_sizes, steps, reverse);
  at::Tensor dh = grad_h_n.clone(), dc = lstm ? grad_c_n->clone() : x.new_empty({0});
  at::Tensor dx = needs_dx ? x.new_empty({x.size(0), x.size(1)}) : x.new_empty({0});
  std::vector<at::Tensor> totals;  // dw_ih, dw_hh, db_ih, db_hh, dw_hr, then layer norm's six
  for (int64_t k = segments.size() - 1; k >= 0; --k) {
    const Segment& seg = segments[k];
    const int64_t batch = batch_sizes[seg.first], rows = seg.row1 - seg.row0;
    std::vector<int64_t> sizes(batch_sizes.begin() + seg.first, batch_sizes.begin() + seg.end);
    at::Tensor xs = x.narrow(0, seg.row0, rows);
    Variants part = segment_variants(v, batch, seg);
    auto f = forward(mode, sizes, reverse, true, xs, states_h[k].narrow(0, 0, batch),
                     lstm ? c10::optional<at::Tensor>(states_c[k].narrow(0, 0, batch)) : c10::nullopt, w_ih, w_hh,
                     b_ih, b_hh, w_hr, part);
    auto g = backward(mode, sizes, reverse, grad_out.narrow(0, seg.row0, rows), dh.narrow(0, 0, batch),
                      lstm ? c10::optional<at::Tensor>(dc.narrow(0, 0, batch)) : c10::nullopt, xs,
                      std::vector<at::Tensor>(f.begin() + 3, f.end()), w_ih, w_hh, b_ih.has_value(), w_hr, needs_dx,
                      part);
    if (needs_dx) dx.narrow(0, seg.row0, rows).copy_(g[0]);
    dh.narrow(0, 0, batch).copy_(g[1]);
    if (lstm) dc.narrow(0, 0, batch).copy_(g[2]);
    if (totals.empty()) {  // copies: a shift's gradient is its bias's tensor, and both add up
      for (auto it = g.begin() + 3; it != g.end(); ++it) totals.push_back(it->clone());
    } else {
      for (size_t j = 0; j < totals.size(); ++j)
        if (totals[j].numel()) totals[j].add_(g[j + 3]);
    }
  }
  std::vector<at::Tensor> grads{dx, dh, dc};
  grads.insert(grads.end(), totals.begin(), totals.end());
  return grads;
}

// A tensor the loops can read as raw rows (contiguous), or none where absent.
c10::optional<at::Tensor> dense(const c10::optional<at::Tensor>& t) {
  if (t.has_value() && t->defined()) return t->contiguous();
  return c10::nullopt;
}

// Inference: the loop with nothing kept for backward and no autograd node. Python passes the nine variant
// tensors (None where off) after the weights. Returns out (N, P), h_n (B, P), c_n (B, H) (empty unless LSTM).
std::vector<at::Tensor> infer_py(int64_t mode, std::vector<int64_t> batch_sizes, bool reverse, const at::Tensor& x,
                                 const at::Tensor& h0, const c10::optional<at::Tensor>& c0, const at::Tensor& w_ih,
                                 const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                                 const c10::optional<at::Tensor>& b_hh, const c10::optional<at::Tensor>& w_hr,
                                 std::vector<c10::optional<at::Tensor>> variants) {
  std::vector<c10::optional<at::Tensor>> t;
  for (const auto& variant : variants) t.push_back(dense(variant));
  Variants v{t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]};
  auto r = forward(mode, batch_sizes, reverse, false, x.contiguous(), h0.contiguous(), dense(c0), w_ih.contiguous(),
                   w_hh.contiguous(), dense(b_ih), dense(b_hh), dense(w_hr), v);
  return {r[0], r[1], r[2]};
}

// ---- the autograd node: forward and backward of one layer and direction, in C++ ----------------------------
// Called from Python once per layer and direction, it records a node whose backward runs in C++ too: measured
// here, a Python autograd.Function cost a small LSTM's training step (14 steps, hidden 10) about 150 us of
// the 600 its whole step took -- more than the arithmetic.

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The optional tensors that may need gradients: c0, b_ih, b_hh, w_hr, and the six layer norm gains and shifts.
using Optionals = std::array<c10::optional<at::Tensor>, 10>;

struct LayerFunction : public torch::autograd::Function<LayerFunction> {
  // `norm`: ln_ih gain, shift, ln_hh gain, shift, ln_c gain, shift; `masks`: rd_mask, zone_h, zone_c (no
  // gradients). Returns out (N, P), h_n (B, P), c_n (B, H) (empty unless LSTM).
  static variable_list forward(AutogradContext* ctx, int64_t mode, std::vector<int64_t> batch_sizes, bool reverse,
                               int64_t steps, const at::Tensor& x, const at::Tensor& h0,
                               const c10::optional<at::Tensor>& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
                               const c10::optional<at::Tensor>& b_ih, const c10::optional<at::Tensor>& b_hh,
                               const c10::optional<at::Tensor>& w_hr, const c10::optional<at::Tensor>& ln_ih_g,
                               const c10::optional<at::Tensor>& ln_ih_s, const c10::optional<at::Tensor>& ln_hh_g,
                               const c10::optional<at::Tensor>& ln_hh_s, const c10::optional<at::Tensor>& ln_c_g,
                               const c10::optional<at::Tensor>& ln_c_s,
                               std::vector<c10::optional<at::Tensor>> masks) {
    const at::Tensor xd = x.contiguous(), h0d = h0.contiguous(), w_ih_d = w_ih.contiguous(), w_hh_d = w_hh.contiguous();
    const Optionals o{dense(c0), dense(b_ih), dense(b_hh), dense(w_hr), dense(ln_ih_g), dense(ln_ih_s),
                      dense(ln_hh_g), dense(ln_hh_s), dense(ln_c_g), dense(ln_c_s)};
    Variants v{o[4], o[5], o[6], o[7], o[8], o[9], dense(masks[0]), dense(masks[1]), dense(masks[2])};
    auto r = steps > 0 ? forward_checkpointed(mode, batch_sizes, reverse, xd, h0d, o[0], w_ih_d, w_hh_d, o[1], o[2],
                                              o[3], v, steps)
                       : ::forward(mode, batch_sizes, reverse, true, xd, h0d, o[0], w_ih_d, w_hh_d, o[1], o[2], o[3], v);
    // which inputs need a gradient, as bits: x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, the six layer norm tensors
    const std::array<const at::Tensor*, 14> inputs{&x, &h0, ptr_of(c0), &w_ih, &w_hh, ptr_of(b_ih), ptr_of(b_hh),
                                                   ptr_of(w_hr), ptr_of(ln_ih_g), ptr_of(ln_ih_s), ptr_of(ln_hh_g),
                                                   ptr_of(ln_hh_s), ptr_of(ln_c_g), ptr_of(ln_c_s)};
    int64_t needs = 0;
    for (size_t k = 0; k < inputs.size(); ++k)
      if (inputs[k] && inputs[k]->requires_grad()) needs |= int64_t(1) << k;
    variable_list saved{xd, w_ih_d, w_hh_d};
    for (const auto& t : o) saved.push_back(t.value_or(at::Tensor()));
    for (const auto& t : {v.rd_mask, v.zone_h, v.zone_c}) saved.push_back(t.value_or(at::Tensor()));
    saved.insert(saved.end(), r.begin() + 3, r.end());  // what the loop kept: 13 tensors, or 2 with steps
    ctx->save_for_backward(saved);
    ctx->saved_data["mode"] = mode;
    ctx->saved_data["batch_sizes"] = batch_sizes;
    ctx->saved_data["reverse"] = reverse;
    ctx->saved_data["steps"] = steps;
    ctx->saved_data["needs"] = needs;
    ctx->saved_data["batch"] = h0.size(0);
    ctx->set_materialize_grads(false);
    if (mode != LSTM) ctx->mark_non_differentiable({r[2]});  // an empty c_n: Python returns None
    return {r[0], r[1], r[2]};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!torch::autograd::GradMode::is_enabled(), "rnnlab's engine differentiates once (its backprop "
                "through time is written by hand): create_graph=True is not supported");
    const auto saved = ctx->get_saved_variables();
    const int64_t mode = ctx->saved_data["mode"].toInt(), steps = ctx->saved_data["steps"].toInt();
    const int64_t needs = ctx->saved_data["needs"].toInt();
    const auto batch_sizes = ctx->saved_data["batch_sizes"].toIntVector();
    const bool reverse = ctx->saved_data["reverse"].toBool();
    const at::Tensor &x = saved[0], &w_ih = saved[1], &w_hh = saved[2];
    auto opt = [&](size_t k) { return saved[k].defined() ? c10::optional<at::Tensor>(saved[k]) : c10::nullopt; };
    Variants v{opt(7), opt(8), opt(9), opt(10), opt(11), opt(12), opt(13), opt(14), opt(15)};
    const std::vector<at::Tensor> kept(saved.begin() + 16, saved.end());
    const int64_t N = x.size(0), B = ctx->saved_data["batch"].toInt(), H = w_hh.size(0) / gates_of(mode);
    const int64_t P = opt(6) ? saved[6].size(0) : H;
    auto grad = [&](size_t k, at::IntArrayRef shape) {
      return grads[k].defined() ? grads[k].contiguous() : x.new_zeros(shape);
    };
    at::Tensor grad_out = grad(0, {N, P}), grad_h_n = grad(1, {B, P});
    c10::optional<at::Tensor> grad_c_n;
    if (mode == LSTM) grad_c_n = grad(2, {B, H});
    auto g = steps > 0 ? backward_checkpointed(mode, batch_sizes, reverse, grad_out, grad_h_n, grad_c_n, x, kept[0],
                                               kept[1], w_ih, w_hh, opt(4), opt(5), opt(6), needs & 1, v, steps)
                       : ::backward(mode, batch_sizes, reverse, grad_out, grad_h_n, grad_c_n, x, kept, w_ih, w_hh,
                                    opt(4).has_value(), opt(6), needs & 1, v);
    // g: dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr, the six layer norm gradients; one per forward argument
    variable_list result(4);  // mode, batch_sizes, reverse, steps
    for (size_t k = 0; k < 14; ++k) result.push_back((needs >> k) & 1 && g[k].numel() ? g[k] : at::Tensor());
    result.emplace_back();  // the masks
    return result;
  }

  static const at::Tensor* ptr_of(const c10::optional<at::Tensor>& t) { return t.has_value() ? &*t : nullptr; }
};

// masks.py's random masks: entry i is 1 where mix((mix(i ^ k0) + k1) mod 2^32) < threshold, mix being
// lowbias32. Each entry depends on its index alone, so all cores fill the mask, 8 entries per instruction.
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  return x ^ (x >> 16);
}

template <typename T>
void fill_mask(T* mask, int64_t numel, uint32_t k0, uint32_t k1, uint32_t threshold) {
  at::parallel_for(0, numel, 1 << 14, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) mask[i] = mix32(mix32(uint32_t(i) ^ k0) + k1) < threshold ? T(1) : T(0);
  });
}

at::Tensor bernoulli_mask(int64_t k0, int64_t k1, int64_t threshold, int64_t numel, at::ScalarType dtype) {
  TORCH_CHECK(numel < (int64_t(1) << 32) && threshold >= 0 && threshold < (int64_t(1) << 32), "bernoulli_mask: ",
              numel, " entries, threshold ", threshold);
  at::Tensor mask = at::empty({numel}, at::TensorOptions().dtype(dtype));
  AT_DISPATCH_FLOATING_TYPES(dtype, "rnnlab_bernoulli_mask", [&] {
    fill_mask<scalar_t>(mask.data_ptr<scalar_t>(), numel, uint32_t(k0), uint32_t(k1), uint32_t(threshold));
  });
  return mask;
}

// The linear scan of scan.py: h_t = a_t * h_{t-1} + b_t over contiguous (N, L, H), and its backward, the
// reverse scan G_t = dh_t + a_{t+1} G_{t+1} with db_t = G_t, da_t = G_t h_{t-1}, dh_0 = a_1 G_1. Each task is
// one row n and a block of units, walking time with its state in registers (the units vectorized); the tasks
// are shared between the cores. No gate reads the state, so nothing else is in the loop.
constexpr int64_t SCAN_BLOCK = 64;

// Units per task: SCAN_BLOCK, or fewer (down to 8, one AVX register of floats) when there would be fewer tasks
// than threads -- one stream of few units still uses every core, splitting its units rather than its time.
int64_t scan_block(int64_t N, int64_t H) {
  int64_t width = SCAN_BLOCK;
  const int64_t threads = at::get_num_threads();
  while (width > 8 && N * ((H + width - 1) / width) < threads) width /= 2;
  return width;
}

using rnnlab::FlushSubnormals;  // common.h

// Runs task(n, first, width) for every row n and block of units [first, first + width), shared between cores.
template <typename F> void for_each_block(int64_t N, int64_t H, const F& task) {
  const int64_t block = scan_block(N, H), blocks = (H + block - 1) / block;
  at::parallel_for(0, N * blocks, 1, [&](int64_t begin, int64_t end) {
    const FlushSubnormals flush;
    for (int64_t index = begin; index < end; ++index) {
      const int64_t n = index / blocks, first = (index % blocks) * block;
      task(n, first, std::min(block, H - first));
    }
  });
}

template <typename T>
void scan_forward_loop(const T* a, const T* b, const T* h0, T* h, int64_t N, int64_t L, int64_t H) {
  for_each_block(N, H, [&](int64_t n, int64_t first, int64_t width) {
    T state[SCAN_BLOCK];
    for (int64_t k = 0; k < width; ++k) state[k] = h0 ? h0[n * H + first + k] : T(0);
    for (int64_t t = 0; t < L; ++t) {
      const int64_t row = (n * L + t) * H + first;
#pragma omp simd
      for (int64_t k = 0; k < width; ++k) {
        state[k] = a[row + k] * state[k] + b[row + k];
        h[row + k] = state[k];
      }
    }
  });
}

template <typename T>
void scan_backward_loop(const T* a, const T* h, const T* h0, const T* grad_h, T* da, T* db, T* dh0, int64_t N,
                        int64_t L, int64_t H) {
  for_each_block(N, H, [&](int64_t n, int64_t first, int64_t width) {
    T carry[SCAN_BLOCK];  // a_{t+1} G_{t+1}: what reaches h_t from the steps after it
    for (int64_t k = 0; k < width; ++k) carry[k] = T(0);
    for (int64_t t = L - 1; t >= 0; --t) {
      const int64_t row = (n * L + t) * H + first;
      const T* previous = t > 0 ? h + row - H : (h0 ? h0 + n * H + first : nullptr);  // h_{t-1}
#pragma omp simd
      for (int64_t k = 0; k < width; ++k) {
        const T g = grad_h[row + k] + carry[k];  // G_t
        db[row + k] = g;
        da[row + k] = previous ? g * previous[k] : T(0);
        carry[k] = a[row + k] * g;
      }
    }
    for (int64_t k = 0; k < width; ++k) dh0[n * H + first + k] = carry[k];  // a_1 G_1
  });
}

void check_scan(const at::Tensor& a, const at::Tensor& b, const c10::optional<at::Tensor>& h0) {
  TORCH_CHECK(a.dim() == 3 && a.sizes() == b.sizes() && a.is_contiguous() && b.is_contiguous() &&
              a.scalar_type() == b.scalar_type() && !a.is_cuda(), "scan: a and b contiguous (N, L, H) CPU tensors");
  TORCH_CHECK(!h0 || (h0->is_contiguous() && h0->dim() == 2 && h0->size(0) == a.size(0) &&
              h0->size(1) == a.size(2) && h0->scalar_type() == a.scalar_type()), "scan: h0 contiguous (N, H)");
}

at::Tensor scan_forward(const at::Tensor& a, const at::Tensor& b, const c10::optional<at::Tensor>& h0) {
  check_scan(a, b, h0);
  at::Tensor h = at::empty_like(a);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnlab_scan_forward", [&] {
    scan_forward_loop<scalar_t>(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                                h0 ? h0->data_ptr<scalar_t>() : nullptr, h.data_ptr<scalar_t>(), a.size(0),
                                a.size(1), a.size(2));
  });
  return h;
}

std::vector<at::Tensor> scan_backward(const at::Tensor& a, const at::Tensor& h, const c10::optional<at::Tensor>& h0,
                                      const at::Tensor& grad_h) {
  check_scan(a, h, h0);
  at::Tensor grad = grad_h.contiguous();
  at::Tensor da = at::empty_like(a), db = at::empty_like(a), dh0 = at::empty({a.size(0), a.size(2)}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnlab_scan_backward", [&] {
    scan_backward_loop<scalar_t>(a.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(),
                                 h0 ? h0->data_ptr<scalar_t>() : nullptr, grad.data_ptr<scalar_t>(),
                                 da.data_ptr<scalar_t>(), db.data_ptr<scalar_t>(), dh0.data_ptr<scalar_t>(),
                                 a.size(0), a.size(1), a.size(2));
  });
  return {da, db, dh0};
}

// The scan layers of scan_layers.py with their gate arithmetic fused around the scan: from the pre-activations
// pre (N, L, G*H) (one block of H per gate, W_ih x_t + b_ih) each step's (a_t, b_t) is computed in the loop, so
// forward reads pre and writes h, and backward reads pre, h and dL/dh and writes dL/dpre -- no (N, L, H)
// tensor of gates is made. Row n runs its first lengths[n] steps (all L without lengths), back to front with
// `reverse`; its steps past the end output 0 and leave the state alone. The per-unit input `decay` is RG-LRU's
// c = -8 softplus(-lambda) (log a_t = c r_t); its gradient comes back per row, (N, H), for the caller to sum.
enum GatedKind { MIN_GRU = 0, MIN_LSTM = 1, RG_LRU = 2 };

template <typename T> inline T candidate(T v) {  // minGRU's g, both sides computed (no branch in the loops)
  const T s = sigmoid(v);
  return v >= T(0) ? v + T(0.5) : s;
}
template <typename T> inline T candidate_grad(T v) {  // g'(v)
  const T s = sigmoid(v);
  return v >= T(0) ? T(1) : s * (T(1) - s);
}

// The loops walk time with a stride of a whole row; asking for the next step's cache lines ahead of use keeps
// the many streams (backward reads and writes eight) from waiting on memory.
template <typename T> inline void prefetch_gates(const T* p, int64_t H, int64_t G, int64_t width) {
  for (int64_t gate = 0; gate < G; ++gate)
    for (int64_t k = 0; k < width; k += 64 / int64_t(sizeof(T))) __builtin_prefetch(p + gate * H + k);
}

struct GatedShape {
  int64_t N, L, H, G;
  const int64_t* lengths;  // (N) or null
  bool reverse;
  int64_t length(int64_t n) const { return lengths ? lengths[n] : L; }
};

template <int KIND, typename T>
void gated_forward_loop(const T* pre, const T* decay, const T* h0, T* h, T* h_n, GatedShape s) {
  const int64_t N = s.N, L = s.L, H = s.H, GH = s.G * H;
  for_each_block(N, H, [&](int64_t n, int64_t first, int64_t width) {
    const int64_t length = s.length(n);
    T state[SCAN_BLOCK];
    for (int64_t k = 0; k < width; ++k) state[k] = h0 ? h0[n * H + first + k] : T(0);
    const T* c = decay ? decay + first : nullptr;
    for (int64_t step = 0; step < length; ++step) {
      const int64_t t = s.reverse ? length - 1 - step : step;
      const T* p = pre + (n * L + t) * GH + first;  // this step's gate k of unit j at p[k * H + j]
      if (step + 1 < length) prefetch_gates(p + (s.reverse ? -GH : GH), H, s.G, width);
      T* out = h + (n * L + t) * H + first;
#pragma omp simd
      for (int64_t k = 0; k < width; ++k) {
        T a, b;
        if constexpr (KIND == MIN_GRU) {
          const T z = sigmoid(p[k]);
          a = T(1) - z, b = z * candidate(p[H + k]);
        } else if constexpr (KIND == MIN_LSTM) {
          const T f = sigmoid(p[k]), i = sigmoid(p[H + k]), sum = f + i;
          a = f / sum, b = i / sum * candidate(p[2 * H + k]);
        } else {
          const T r = sigmoid(p[k]), i = sigmoid(p[H + k]);
          a = std::exp(c[k] * r), b = std::sqrt(T(1) - a * a) * (i * p[2 * H + k]);
        }
        state[k] = a * state[k] + b;
        out[k] = state[k];
      }
    }
    for (int64_t t = length; t < L; ++t)
      for (int64_t k = 0; k < width; ++k) h[(n * L + t) * H + first + k] = T(0);
    for (int64_t k = 0; k < width; ++k) h_n[n * H + first + k] = state[k];
  });
}

template <int KIND, typename T>
void gated_backward_loop(const T* pre, const T* decay, const T* h0, const T* h, const T* grad_h, const T* grad_hn,
                         T* grad_pre, T* grad_decay, T* grad_h0, GatedShape s) {
  const int64_t N = s.N, L = s.L, H = s.H, GH = s.G * H;
  for_each_block(N, H, [&](int64_t n, int64_t first, int64_t width) {
    const int64_t length = s.length(n);
    T carry[SCAN_BLOCK], dc[SCAN_BLOCK];  // carry: a_{t+1} G_{t+1} (dL/dh_n at the last step); dc: dL/dc
    for (int64_t k = 0; k < width; ++k) carry[k] = grad_hn[n * H + first + k], dc[k] = T(0);
    const T* c = decay ? decay + first : nullptr;
    T zeros[SCAN_BLOCK] = {};
    const T* start = h0 ? h0 + n * H + first : zeros;  // the state before the first step run
    for (int64_t step = length - 1; step >= 0; --step) {
      const int64_t t = s.reverse ? length - 1 - step : step;
      const int64_t before = s.reverse ? t + 1 : t - 1;  // the step run just before t
      const T* previous = step > 0 ? h + (n * L + before) * H + first : start;  // h_{t-1}
      const T* p = pre + (n * L + t) * GH + first;
      if (step > 0) {  // the next step walked: its gates, dL/dh and h_{t-1}
        const int64_t next = s.reverse ? 1 : -1;
        prefetch_gates(p + next * GH, H, s.G, width);
        prefetch_gates(grad_h + (n * L + t + next) * H + first, H, 1, width);
      }
      const T* dh = grad_h + (n * L + t) * H + first;
      T* dp = grad_pre + (n * L + t) * GH + first;
#pragma omp simd
      for (int64_t k = 0; k < width; ++k) {
        const T g = dh[k] + carry[k];  // G_t
        const T da = g * previous[k], db = g;
        T a;
        if constexpr (KIND == MIN_GRU) {  // a = 1 - z, b = z g(v)
          const T z = sigmoid(p[k]), v = p[H + k], gv = candidate(v);
          a = T(1) - z;
          dp[k] = (db * gv - da) * z * (T(1) - z);
          dp[H + k] = db * z * candidate_grad(v);
        } else if constexpr (KIND == MIN_LSTM) {  // a = f / (f + i), b = i / (f + i) g(v)
          const T f = sigmoid(p[k]), i = sigmoid(p[H + k]), v = p[2 * H + k], sum = f + i;
          const T fn = f / sum, in = i / sum;  // f', i'
          // dL/df = (da - db g) i / (f + i)^2, written as f' i' / f (the square underflows in float32)
          const T w = (da - db * candidate(v)) * fn * in;
          a = fn;
          dp[k] = w * (T(1) - f);
          dp[H + k] = -w * (T(1) - i);
          dp[2 * H + k] = db * in * candidate_grad(v);
        } else {  // a = exp(c r), b = q i v with q = sqrt(1 - a^2)
          const T r = sigmoid(p[k]), i = sigmoid(p[H + k]), v = p[2 * H + k];
          a = std::exp(c[k] * r);
          const T q = std::sqrt(T(1) - a * a);
          // through a and through q; dq/da = -a / q with q held >= 1e-3 there (Griffin's bounded derivative)
          const T da_all = da - db * i * v * a / std::max(q, T(1e-3));
          dc[k] += da_all * a * r;
          dp[k] = da_all * a * c[k] * r * (T(1) - r);
          dp[H + k] = db * q * v * i * (T(1) - i);
          dp[2 * H + k] = db * q * i;
        }
        carry[k] = a * g;
      }
    }
    for (int64_t t = length; t < L; ++t)
      for (int64_t gate = 0; gate < s.G; ++gate)
        for (int64_t k = 0; k < width; ++k) grad_pre[(n * L + t) * GH + gate * H + first + k] = T(0);
    for (int64_t k = 0; k < width; ++k) {
      grad_h0[n * H + first + k] = carry[k];
      if (grad_decay) grad_decay[n * H + first + k] = dc[k];
    }
  });
}

int64_t gated_gates(int64_t kind) {
  TORCH_CHECK(kind >= MIN_GRU && kind <= RG_LRU, "gated scan: kind 0 (minGRU), 1 (minLSTM) or 2 (RG-LRU)");
  return kind == MIN_GRU ? 2 : 3;
}

GatedShape check_gated(int64_t kind, const at::Tensor& pre, const c10::optional<at::Tensor>& decay,
                       const c10::optional<at::Tensor>& h0, const c10::optional<at::Tensor>& lengths, bool reverse) {
  const int64_t G = gated_gates(kind);
  TORCH_CHECK(pre.dim() == 3 && pre.is_contiguous() && !pre.is_cuda() && pre.size(2) % G == 0,
              "gated scan: pre a contiguous (N, L, G*H) CPU tensor");
  const int64_t N = pre.size(0), L = pre.size(1), H = pre.size(2) / G;
  TORCH_CHECK((kind == RG_LRU) == decay.has_value(), "gated scan: RG-LRU, and only it, takes decay");
  TORCH_CHECK(!decay || (decay->is_contiguous() && decay->numel() == H && decay->scalar_type() == pre.scalar_type()),
              "gated scan: decay contiguous (H)");
  TORCH_CHECK(!h0 || (h0->is_contiguous() && h0->dim() == 2 && h0->size(0) == N && h0->size(1) == H &&
              h0->scalar_type() == pre.scalar_type()), "gated scan: h0 contiguous (N, H)");
  const int64_t* steps = nullptr;
  if (lengths) {
    TORCH_CHECK(lengths->is_contiguous() && lengths->numel() == N && lengths->scalar_type() == at::kLong,
                "gated scan: lengths int64 (N)");
    steps = lengths->data_ptr<int64_t>();
    for (int64_t n = 0; n < N; ++n) TORCH_CHECK(steps[n] >= 0 && steps[n] <= L, "gated scan: lengths in [0, L]");
  }
  return {N, L, H, G, steps, reverse};
}

template <typename F> void dispatch_kind(int64_t kind, F&& run) {
  if (kind == MIN_GRU) run(std::integral_constant<int, MIN_GRU>());
  else if (kind == MIN_LSTM) run(std::integral_constant<int, MIN_LSTM>());
  else run(std::integral_constant<int, RG_LRU>());
}

template <typename T> const T* optional_data(const c10::optional<at::Tensor>& t) {
  return t ? t->data_ptr<T>() : nullptr;
}

std::vector<at::Tensor> gated_scan_forward(int64_t kind, const at::Tensor& pre, const c10::optional<at::Tensor>& decay,
                                           const c10::optional<at::Tensor>& h0,
                                           const c10::optional<at::Tensor>& lengths, bool reverse) {
  const GatedShape s = check_gated(kind, pre, decay, h0, lengths, reverse);
  at::Tensor h = at::empty({s.N, s.L, s.H}, pre.options()), h_n = at::empty({s.N, s.H}, pre.options());
  AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "rnnlab_gated_scan_forward", [&] {
    dispatch_kind(kind, [&](auto which) {
      gated_forward_loop<decltype(which)::value, scalar_t>(pre.data_ptr<scalar_t>(), optional_data<scalar_t>(decay),
                                                          optional_data<scalar_t>(h0), h.data_ptr<scalar_t>(),
                                                          h_n.data_ptr<scalar_t>(), s);
    });
  });
  return {h, h_n};
}

std::vector<at::Tensor> gated_scan_backward(int64_t kind, const at::Tensor& pre, const c10::optional<at::Tensor>& decay,
                                            const c10::optional<at::Tensor>& h0,
                                            const c10::optional<at::Tensor>& lengths, bool reverse,
                                            const at::Tensor& h, const at::Tensor& grad_h, const at::Tensor& grad_hn) {
  const GatedShape s = check_gated(kind, pre, decay, h0, lengths, reverse);
  TORCH_CHECK(h.is_contiguous() && h.dim() == 3 && h.size(0) == s.N && h.size(1) == s.L && h.size(2) == s.H,
              "gated scan: h contiguous (N, L, H)");
  at::Tensor dh = grad_h.contiguous(), dhn = grad_hn.contiguous();
  TORCH_CHECK(dh.sizes() == h.sizes() && dhn.dim() == 2 && dhn.size(0) == s.N && dhn.size(1) == s.H,
              "gated scan: grad_h (N, L, H) and grad_hn (N, H)");
  at::Tensor grad_pre = at::empty_like(pre), grad_h0 = at::empty({s.N, s.H}, pre.options());
  at::Tensor grad_decay = decay ? at::empty({s.N, s.H}, pre.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "rnnlab_gated_scan_backward", [&] {
    dispatch_kind(kind, [&](auto which) {
      gated_backward_loop<decltype(which)::value, scalar_t>(
          pre.data_ptr<scalar_t>(), optional_data<scalar_t>(decay), optional_data<scalar_t>(h0),
          h.data_ptr<scalar_t>(), dh.data_ptr<scalar_t>(), dhn.data_ptr<scalar_t>(), grad_pre.data_ptr<scalar_t>(),
          decay ? grad_decay.data_ptr<scalar_t>() : nullptr, grad_h0.data_ptr<scalar_t>(), s);
    });
  });
  return {grad_pre, grad_decay, grad_h0};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("layer", [](int64_t mode, std::vector<int64_t> batch_sizes, bool reverse, int64_t steps, const at::Tensor& x,
                    const at::Tensor& h0, const c10::optional<at::Tensor>& c0, const at::Tensor& w_ih,
                    const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                    const c10::optional<at::Tensor>& b_hh, const c10::optional<at::Tensor>& w_hr,
                    std::vector<c10::optional<at::Tensor>> variants) {
    auto& t = variants;
    return LayerFunction::apply(mode, batch_sizes, reverse, steps, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, t[0], t[1],
                                t[2], t[3], t[4], t[5], std::vector<c10::optional<at::Tensor>>(t.begin() + 6, t.end()));
  }, "one layer and direction with an autograd node (forward now, backward when autograd reaches it)");
  m.def("set_flat_below", [](int64_t units) {
    TORCH_CHECK(units >= 0 && units <= FLAT_UNITS, "set_flat_below: 0 to ", FLAT_UNITS, " units");
    std::swap(flat_below, units);
    return units;
  }, "LSTM layers with fewer hidden units than this (at most 32) run blocks of rows gate-major; returns the old "
     "setting", py::arg("units"));
  m.def("use_onednn", [](bool on) { onednn_wanted = on; }, "run large float32 recurrent products through oneDNN");
  m.def("set_split_range", [](int64_t from, int64_t to, int64_t team) {
    std::swap(split_from, from), std::swap(split_to, to), std::swap(split_team, team);
    return std::make_tuple(from, to, team);
  }, "the LSTM hidden sizes [from, to) whose units are split between threads, and at most how many threads run "
     "the blocks (0: one each); returns the old settings", py::arg("from"), py::arg("to"), py::arg("team") = 0);
  m.def("bernoulli_mask", &bernoulli_mask, "masks.py's mask of numel entries (a 1-d CPU tensor of dtype)");
  m.def("infer", &infer_py, "one layer and direction over packed rows, forward only, keeping nothing");
  m.def("scan_forward", &scan_forward, "h_t = a_t * h_{t-1} + b_t over (N, L, H)", py::arg("a"), py::arg("b"),
        py::arg("h0"));
  m.def("scan_backward", &scan_backward, "the scan's (da, db, dh0) from dL/dh", py::arg("a"), py::arg("h"),
        py::arg("h0"), py::arg("grad_h"));
  m.def("selective_scan_forward", &rnnlab::selective_scan_forward, "selective_scan.cpp: (y, h_L, bounds)",
        py::arg("u"), py::arg("dt"), py::arg("A"), py::arg("B"), py::arg("C"), py::arg("h0"), py::arg("chunk"),
        py::arg("keep"));
  m.def("selective_scan_backward", &rnnlab::selective_scan_backward,
        "selective_scan.cpp: (du, ddt, dA, dB, dC, dh0)", py::arg("u"), py::arg("dt"), py::arg("A"), py::arg("B"),
        py::arg("C"), py::arg("h0"), py::arg("bounds"), py::arg("dy"), py::arg("dlast"), py::arg("chunk"));
  m.def("mamba_stack_step", &rnnlab::mamba_stack_step, "selective_scan.cpp: one token through a stack of Mamba "
        "blocks and its final norm, (output, windows, states)", py::arg("input"), py::arg("windows"),
        py::arg("states"), py::arg("layers"), py::arg("norm_f"), py::arg("eps"));
  m.def("gated_delta_forward", &rnnlab::gated_delta_forward, "matrix_memory.cpp: (o, S_T, bounds)", py::arg("q"),
        py::arg("k"), py::arg("v"), py::arg("g"), py::arg("beta"), py::arg("s0"), py::arg("chunk"), py::arg("keep"));
  m.def("gated_delta_backward", &rnnlab::gated_delta_backward, "matrix_memory.cpp: (dq, dk, dv, dg, dbeta, dS0)",
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("beta"), py::arg("bounds"), py::arg("dout"),
        py::arg("dlast"), py::arg("want_ds0"), py::arg("chunk"));
  m.def("mlstm_forward", &rnnlab::mlstm_forward, "matrix_memory.cpp: (h, c, n, m, bounds)", py::arg("q"),
        py::arg("k"), py::arg("v"), py::arg("i"), py::arg("logf"), py::arg("c0"), py::arg("n0"), py::arg("m0"),
        py::arg("eps"), py::arg("chunk"), py::arg("keep"));
  m.def("mlstm_backward", &rnnlab::mlstm_backward, "matrix_memory.cpp: (dq, dk, dv, di, dlogf, dc0, dn0, dm0)",
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("i"), py::arg("logf"), py::arg("bounds"), py::arg("h"),
        py::arg("dh"), py::arg("dc"), py::arg("dn"), py::arg("dm"), py::arg("eps"), py::arg("chunk"));
  m.def("has_blas", &rnnlab::has_blas, "whether matrix_memory.cpp's products run on BLAS (else plain loops)");
  m.def("set_blas", &rnnlab::set_blas, "matrix_memory.cpp's products on BLAS (true, where there is one) or in "
        "plain loops; returns the old setting", py::arg("on"));
  m.def("gated_scan_forward", &gated_scan_forward, "a scan layer's (h, h_n) from its pre-activations (N, L, G*H)",
        py::arg("kind"), py::arg("pre"), py::arg("decay"), py::arg("h0"), py::arg("lengths"), py::arg("reverse"));
  m.def("gated_scan_backward", &gated_scan_backward, "(dL/dpre, dL/ddecay per row or undefined, dL/dh0)",
        py::arg("kind"), py::arg("pre"), py::arg("decay"), py::arg("h0"), py::arg("lengths"), py::arg("reverse"),
        py::arg("h"), py::arg("grad_h"), py::arg("grad_hn"));
}
