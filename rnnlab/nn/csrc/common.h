// What the engine's source files share: the subnormal flush of the scans' loops and the functions that
// selective_scan.cpp gives engine.cpp's module.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include <vector>

namespace rnnlab {

// Subnormal numbers (below 1.2e-38 in float32) flushed to zero while it lives, on this thread (x86's MXCSR
// FTZ and DAZ bits), restored after. A gradient that a decay a_t < 1 carries back over many steps shrinks
// through the subnormal range before it reaches zero, and each operation there costs about 100 normal ones:
// with minGRU's a = 0.5 at initialisation and T = 1,000 that made the backward scan 1.5x slower.
struct FlushSubnormals {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned int saved = _mm_getcsr();
  FlushSubnormals() { _mm_setcsr(saved | 0x8040); }
  ~FlushSubnormals() { _mm_setcsr(saved); }
#endif
};

// Tasks 0 .. count - 1 shared among torch's threads, one at a time each, subnormals flushed on every thread.
template <typename F> void for_each_task(int64_t count, const F& task) {
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    const FlushSubnormals flush;
    for (int64_t index = begin; index < end; ++index) task(index);
  });
}

// selective_scan.cpp: the selective scan of ops/selective_scan.py.
std::vector<at::Tensor> selective_scan_forward(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A,
                                               const at::Tensor& B, const at::Tensor& C,
                                               const c10::optional<at::Tensor>& h0, int64_t chunk, bool keep);
std::vector<at::Tensor> selective_scan_backward(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A,
                                                const at::Tensor& B, const at::Tensor& C,
                                                const c10::optional<at::Tensor>& h0, const at::Tensor& bounds,
                                                const at::Tensor& dy, const c10::optional<at::Tensor>& dlast,
                                                int64_t chunk);
std::vector<at::Tensor> mamba_stack_step(const at::Tensor& input, const at::Tensor& windows, const at::Tensor& states,
                                         const std::vector<std::vector<c10::optional<at::Tensor>>>& layers,
                                         const at::Tensor& norm_f, double eps);

// matrix_memory.cpp: the chunkwise gated delta rule and mLSTM of ops/gated_delta_rule.py and ops/mlstm.py.
std::vector<at::Tensor> gated_delta_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                            const at::Tensor& g, const at::Tensor& beta,
                                            const c10::optional<at::Tensor>& s0, int64_t chunk, bool keep);
std::vector<at::Tensor> gated_delta_backward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                             const at::Tensor& g, const at::Tensor& beta, const at::Tensor& bounds,
                                             const at::Tensor& dout, const c10::optional<at::Tensor>& dlast,
                                             bool want_ds0, int64_t chunk);
std::vector<at::Tensor> mlstm_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& i, const at::Tensor& logf, const at::Tensor& c0,
                                      const at::Tensor& n0, const at::Tensor& m0, double eps, int64_t chunk,
                                      bool keep);
std::vector<at::Tensor> mlstm_backward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& i, const at::Tensor& logf, const at::Tensor& bounds,
                                       const at::Tensor& h, const at::Tensor& dh, const at::Tensor& dc,
                                       const at::Tensor& dn, const at::Tensor& dm, double eps, int64_t chunk);
bool has_blas();
bool set_blas(bool on);

}  // namespace rnnlab
