// The fast path of rnnlab's engine: the time loop of engine.py (one layer, one direction, packed rows), forward
// and backward, in C++. Matrix products go to ATen (BLAS); each cell's element-wise step is one fused loop.
// The equations are those of cells.py, written out per element; engine.py stays the readable reference and
// the parity tests hold this file to it (and to torch.nn) in float64.
//
// Layout (as engine.py): x (N, D) holds the rows of every step, step t the next batch_sizes[t] rows; a step's
// rows are the first batch_sizes[t] sequences. G = gates (RNN 1, LSTM 4, GRU 3), H = hidden, P = proj or H.

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

enum Mode { RNN_TANH = 0, RNN_RELU = 1, LSTM = 2, GRU = 3 };

int64_t gates_of(int64_t mode) { return mode == LSTM ? 4 : mode == GRU ? 3 : 1; }

// sigmoid(v) = (1 + tanh(v / 2)) / 2: one tanh, which the compiler vectorizes (glibc's libmvec)
template <typename T> inline T sigmoid(T v) { return T(0.5) * std::tanh(T(0.5) * v) + T(0.5); }

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

// y (rows, n) = a (rows, k) w^T [+ bias], with w (n, k): the recurrent product h W_hh^T + b_hh of one step.
template <typename T>
void product_nt(at::Tensor y, const at::Tensor& a, const at::Tensor& w, const c10::optional<at::Tensor>& bias) {
  const int64_t rows = a.size(0), k = a.size(1), n = w.size(0);
  if (rows * n * k > SMALL_PRODUCT) {
    if (bias.has_value()) at::addmm_out(y, *bias, a, w.t()); else at::mm_out(y, a, w.t());
    return;
  }
  const T *ap = a.data_ptr<T>(), *wp = w.data_ptr<T>(), *bp = bias.has_value() ? bias->data_ptr<T>() : nullptr;
  T* yp = y.data_ptr<T>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      T sum = bp ? bp[j] : T(0);
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < k; ++i) sum += ap[r * k + i] * wp[j * k + i];
      yp[r * n + j] = sum;
    }
  }
}

// y (rows, n) = a (rows, k) w, with w (k, n): the gradient d_h_proj W_hh reaching h_{t-1}.
template <typename T>
void product_nn(at::Tensor y, const at::Tensor& a, const at::Tensor& w) {
  const int64_t rows = a.size(0), k = a.size(1), n = w.size(1);
  if (rows * n * k > SMALL_PRODUCT) {
    at::mm_out(y, a, w);
    return;
  }
  const T *ap = a.data_ptr<T>(), *wp = w.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  for (int64_t r = 0; r < rows; ++r) {
    T* y_row = yp + r * n;
    std::fill(y_row, y_row + n, T(0));
    for (int64_t i = 0; i < k; ++i) {
      const T scale = ap[r * k + i];
      const T* w_row = wp + i * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y_row[j] += scale * w_row[j];
    }
  }
}

at::Tensor project(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b) {
  return b.has_value() ? at::addmm(*b, x, w.t()) : at::mm(x, w.t());
}

// One step of the cell for `size` rows, element by element. xp, hp: (size, G*H) pre-activations;
// c: (size, H) cell state, read as c_{t-1} and overwritten with c_t; m: (size, H) new hidden state;
// act: (size, G*H) what backward needs (LSTM i, f, g, o; GRU r, z, n; RNN h), hn: (size, H) GRU's W_hn h + b_hn.
template <typename T>
void cell_forward(int64_t mode, int64_t size, int64_t H, const T* xp, const T* hp, const T* h_prev, int64_t P,
                  T* c, T* c_prev_out, T* m, T* act, T* hn) {
  const int64_t G = gates_of(mode);
  at::parallel_for(0, size, 16, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* x_row = xp + b * G * H;
      const T* h_row = hp + b * G * H;
      T* a = act + b * G * H;
      T* m_row = m + b * H;
      if (mode == LSTM) {
        T* c_row = c + b * H;
        if (c_prev_out) std::copy(c_row, c_row + H, c_prev_out + b * H);
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          T i = sigmoid(x_row[k] + h_row[k]);
          T f = sigmoid(x_row[H + k] + h_row[H + k]);
          T g = std::tanh(x_row[2 * H + k] + h_row[2 * H + k]);
          T o = sigmoid(x_row[3 * H + k] + h_row[3 * H + k]);
          T c_new = f * c_row[k] + i * g;  // c' = f * c + i * g
          c_row[k] = c_new;
          m_row[k] = o * std::tanh(c_new);  // h' = o * tanh(c')
          a[k] = i;
          a[H + k] = f;
          a[2 * H + k] = g;
          a[3 * H + k] = o;
        }
      } else if (mode == GRU) {
        const T* hp_row = h_prev + b * P;
        T* hn_row = hn + b * H;
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
      } else if (mode == RNN_TANH) {
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          T h = std::tanh(x_row[k] + h_row[k]);
          m_row[k] = h;
          a[k] = h;
        }
      } else {
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          T pre = x_row[k] + h_row[k];
          T h = pre > T(0) ? pre : T(0);
          m_row[k] = h;
          a[k] = h;
        }
      }
    }
  });
}

// The cell's backward step for `size` rows. dm: (size, H) gradient at the new hidden state; dc: (size, H)
// gradient at c_t, overwritten with the gradient at c_{t-1}; dxp, dhp: (size, G*H) gradients at the
// pre-activations (dhp differs from dxp only for GRU); direct: (size, H) GRU's z * dh reaching h_{t-1}.
template <typename T>
void cell_backward(int64_t mode, int64_t size, int64_t H, const T* dm, T* dc, const T* act, const T* c,
                   const T* c_prev, const T* hn, const T* h_prev, int64_t P, T* dxp, T* dhp, T* direct) {
  const int64_t G = gates_of(mode);
  at::parallel_for(0, size, 16, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* a = act + b * G * H;
      const T* dm_row = dm + b * H;
      T* dx = dxp + b * G * H;
      if (mode == LSTM) {
        const T* c_row = c + b * H;
        const T* c_prev_row = c_prev + b * H;
        T* dc_row = dc + b * H;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          T i = a[k], f = a[H + k], g = a[2 * H + k], o = a[3 * H + k];
          T tanh_c = std::tanh(c_row[k]);
          T dc_k = dc_row[k] + dm_row[k] * o * (T(1) - tanh_c * tanh_c);  // c reaches the loss directly and via h
          T di = dc_k * g, df = dc_k * c_prev_row[k], dg = dc_k * i, d_o = dm_row[k] * tanh_c;
          dc_row[k] = dc_k * f;
          dx[k] = di * i * (T(1) - i);
          dx[H + k] = df * f * (T(1) - f);
          dx[2 * H + k] = dg * (T(1) - g * g);
          dx[3 * H + k] = d_o * o * (T(1) - o);
        }
      } else if (mode == GRU) {
        T* dh = dhp + b * G * H;
        const T* hp_row = h_prev + b * P;
        const T* hn_row = hn + b * H;
        T* direct_row = direct + b * H;
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
      } else if (mode == RNN_TANH) {
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) dx[k] = dm_row[k] * (T(1) - a[k] * a[k]);
      } else {
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) dx[k] = a[k] > T(0) ? dm_row[k] : T(0);
      }
    }
  });
}

}  // namespace

// Returns out (N, P), h_n (B, P), c_n (B, H) (empty unless LSTM), and what backward needs: act (N, G*H),
// c_all (N, H), c_prev_all (N, H), hn_all (N, H), h_prev_all (N, P), m_all (N, H) (empty where unused).
std::vector<at::Tensor> forward(int64_t mode, std::vector<int64_t> batch_sizes, bool reverse, bool keep,
                                const at::Tensor& x, const at::Tensor& h0, const c10::optional<at::Tensor>& c0,
                                const at::Tensor& w_ih, const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_ih,
                                const c10::optional<at::Tensor>& b_hh, const c10::optional<at::Tensor>& w_hr) {
  const int64_t N = x.size(0), B = h0.size(0), P = h0.size(1), G = gates_of(mode), H = w_hh.size(0) / G;
  const bool proj = w_hr.has_value();
  auto none = x.new_empty({0});
  at::Tensor x_proj = project(x, w_ih, b_ih).contiguous();  // (N, G*H) every step's input projection at once
  at::Tensor out = x.new_empty({N, P});
  at::Tensor h = h0.clone();  // (B, P) state, updated in place
  at::Tensor c = mode == LSTM ? c0->clone() : none;  // (B, H)
  at::Tensor act = x.new_empty({keep ? N : B, G * H});  // without keep: a scratch row block, reused
  at::Tensor c_all = keep && mode == LSTM ? x.new_empty({N, H}) : none;
  at::Tensor c_prev_all = keep && mode == LSTM ? x.new_empty({N, H}) : none;
  at::Tensor hn_all = mode == GRU ? x.new_empty({keep ? N : B, H}) : none;
  at::Tensor h_prev_all = keep ? x.new_empty({N, P}) : none;
  at::Tensor m_all = proj ? x.new_empty({keep ? N : B, H}) : none;
  at::Tensor h_proj = x.new_empty({B, G * H});
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_forward", [&] {
    scalar_t* h_data = h.data_ptr<scalar_t>();
    for (auto [start, size] : step_rows(batch_sizes, reverse)) {
      const int64_t at_row = keep ? start : 0;  // where this step's saved rows go
      at::Tensor h_prev = h.narrow(0, 0, size);  // (B_t, P)
      if (keep) std::copy(h_data, h_data + size * P, h_prev_all.data_ptr<scalar_t>() + start * P);
      at::Tensor hp = h_proj.narrow(0, 0, size);  // (B_t, G*H)
      product_nt<scalar_t>(hp, h_prev, w_hh, b_hh);
      at::Tensor h_new = out.narrow(0, start, size);  // (B_t, P)
      at::Tensor m = proj ? m_all.narrow(0, at_row, size) : h_new;  // (B_t, H)
      cell_forward<scalar_t>(mode, size, H, x_proj.data_ptr<scalar_t>() + start * G * H, hp.data_ptr<scalar_t>(),
                             h_data, P, mode == LSTM ? c.data_ptr<scalar_t>() : nullptr,
                             keep && mode == LSTM ? c_prev_all.data_ptr<scalar_t>() + start * H : nullptr,
                             m.data_ptr<scalar_t>(), act.data_ptr<scalar_t>() + at_row * G * H,
                             mode == GRU ? hn_all.data_ptr<scalar_t>() + at_row * H : nullptr);
      if (proj) product_nt<scalar_t>(h_new, m, *w_hr, c10::nullopt);  // h_t = W_hr m_t
      if (keep && mode == LSTM) {
        const scalar_t* c_data = c.data_ptr<scalar_t>();
        std::copy(c_data, c_data + size * H, c_all.data_ptr<scalar_t>() + start * H);
      }
      const scalar_t* new_data = h_new.data_ptr<scalar_t>();
      std::copy(new_data, new_data + size * P, h_data);
    }
  });
  return {out, h, c, act, c_all, c_prev_all, hn_all, h_prev_all, m_all};
}

// Returns dx (N, D), dh0 (B, P), dc0 (B, H) (empty unless LSTM), dw_ih, dw_hh, db_ih, db_hh, dw_hr (empty where
// absent).
std::vector<at::Tensor> backward(int64_t mode, std::vector<int64_t> batch_sizes, bool reverse,
                                 const at::Tensor& grad_out, const at::Tensor& grad_h_n,
                                 const c10::optional<at::Tensor>& grad_c_n, const at::Tensor& x,
                                 const at::Tensor& act, const at::Tensor& c_all, const at::Tensor& c_prev_all,
                                 const at::Tensor& hn_all, const at::Tensor& h_prev_all, const at::Tensor& m_all,
                                 const at::Tensor& w_ih, const at::Tensor& w_hh, bool has_bias,
                                 const c10::optional<at::Tensor>& w_hr, bool needs_dx) {
  const int64_t N = x.size(0), B = grad_h_n.size(0), G = gates_of(mode), H = w_hh.size(0) / G;
  const int64_t P = grad_h_n.size(1);
  const bool proj = w_hr.has_value();
  auto none = x.new_empty({0});
  at::Tensor d_xp = x.new_empty({N, G * H});  // every row is written once, by its step
  at::Tensor d_hp = mode == GRU ? x.new_empty({N, G * H}) : d_xp;
  at::Tensor dh_all = proj ? x.new_empty({N, P}) : none;
  at::Tensor dh = grad_h_n.clone();  // (B, P) gradient at the state after the last step
  at::Tensor dc = mode == LSTM ? grad_c_n->clone() : none;  // (B, H)
  at::Tensor dh_t = x.new_empty({B, P});
  at::Tensor dm = proj ? x.new_empty({B, H}) : dh_t;
  at::Tensor direct = mode == GRU ? x.new_empty({B, H}) : none;
  auto rows = step_rows(batch_sizes, reverse);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_backward", [&] {
    scalar_t *dh_data = dh.data_ptr<scalar_t>(), *dh_t_data = dh_t.data_ptr<scalar_t>();
    const scalar_t* grad_out_data = grad_out.data_ptr<scalar_t>();
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
      auto [start, size] = *it;
      for (int64_t e = 0; e < size * P; ++e) dh_t_data[e] = dh_data[e] + grad_out_data[start * P + e];  // t+1, output t
      at::Tensor dh_step = dh_t.narrow(0, 0, size);
      if (proj) {
        std::copy(dh_t_data, dh_t_data + size * P, dh_all.data_ptr<scalar_t>() + start * P);
        product_nn<scalar_t>(dm.narrow(0, 0, size), dh_step, *w_hr);  // back through the projection
      }
      cell_backward<scalar_t>(mode, size, H, dm.data_ptr<scalar_t>(),
                              mode == LSTM ? dc.data_ptr<scalar_t>() : nullptr,
                              act.data_ptr<scalar_t>() + start * G * H,
                              mode == LSTM ? c_all.data_ptr<scalar_t>() + start * H : nullptr,
                              mode == LSTM ? c_prev_all.data_ptr<scalar_t>() + start * H : nullptr,
                              mode == GRU ? hn_all.data_ptr<scalar_t>() + start * H : nullptr,
                              h_prev_all.data_ptr<scalar_t>() + start * P, P,
                              d_xp.data_ptr<scalar_t>() + start * G * H,
                              mode == GRU ? d_hp.data_ptr<scalar_t>() + start * G * H : nullptr,
                              mode == GRU ? direct.data_ptr<scalar_t>() : nullptr);
      product_nn<scalar_t>(dh.narrow(0, 0, size), d_hp.narrow(0, start, size), w_hh);  // dh_{t-1} through W_hh
      if (mode == GRU) {
        const scalar_t* direct_data = direct.data_ptr<scalar_t>();
        for (int64_t e = 0; e < size * P; ++e) dh_data[e] += direct_data[e];  // and around it (z * h_{t-1})
      }
    }
  });
  at::Tensor dx = needs_dx ? at::mm(d_xp, w_ih) : none;
  at::Tensor dw_ih = at::mm(d_xp.t(), x);
  at::Tensor dw_hh = at::mm(d_hp.t(), h_prev_all);
  at::Tensor db_ih = has_bias ? d_xp.sum(0) : none;
  at::Tensor db_hh = has_bias ? d_hp.sum(0) : none;
  at::Tensor dw_hr = proj ? at::mm(dh_all.t(), m_all) : none;
  return {dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "one recurrent layer and direction over packed rows, forward");
  m.def("backward", &backward, "its backward pass (backprop through time)");
}
