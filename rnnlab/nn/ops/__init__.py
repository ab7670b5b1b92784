"""The recurrences as functional operators, each in one module with its forms side by side: the readable loop
(the reference) and the C++ kernel (``csrc/``) with its hand-written backward.

    linear_scan.py      h_t = a_t * h_{t-1} + b_t, elementwise (minGRU, minLSTM, RG-LRU)
    selective_scan.py   Mamba's S6: h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t, y_t = C_t . h_t + D u_t
    gated_delta_rule.py a matrix memory per head: S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
    mlstm.py            xLSTM's mLSTM: C_t = f_t C_{t-1} + i_t k_t v_t^T, exponential gates, a stabiliser

The matrix memories have a third form between the two: the chunkwise one in torch operations (the lesson), which
their C++ kernels (``csrc/matrix_memory.cpp``) compute with a hand-written backward.
"""

from .gated_delta_rule import gated_delta_rule
from .linear_scan import linear_scan
from .mlstm import mlstm
from .selective_scan import selective_scan

__all__ = ["linear_scan", "selective_scan", "gated_delta_rule", "mlstm"]
