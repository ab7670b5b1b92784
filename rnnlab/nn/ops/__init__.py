"""The recurrences as functional operators, each in one module with its forms side by side: the readable loop
(the reference) and the C++ kernel (``csrc/``) with its hand-written backward.

    linear_scan.py      h_t = a_t * h_{t-1} + b_t, elementwise (minGRU, minLSTM, RG-LRU)
    selective_scan.py   Mamba's S6: h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t, y_t = C_t . h_t + D u_t
"""

from .linear_scan import linear_scan
from .selective_scan import selective_scan

__all__ = ["linear_scan", "selective_scan"]
