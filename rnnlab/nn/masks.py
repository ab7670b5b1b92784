"""Random 0/1 masks (zoneout, recurrent dropout) from a counter-based generator, the same bits on every engine.

A mask of n entries, each 1 with probability p, is drawn as

    key    = (k0, k1), two 32-bit words drawn from torch's default CPU generator
    word_i = mix((mix(i XOR k0) + k1) mod 2^32)            i = 0 .. n-1, the entry's index in the mask
    mask_i = 1 if word_i < floor(p * 2^32) else 0

where ``mix`` is C. Wellons' "lowbias32", an invertible 32-bit integer hash with strong avalanche (every input
bit flips each output bit with probability ~1/2):

    x ^= x >> 16;  x *= 0x7feb352d;  x ^= x >> 15;  x *= 0x846ca68b;  x ^= x >> 16      (all mod 2^32)

Why not ``torch.rand``: on the CPU torch draws its uniform numbers one after another from one Mersenne twister,
2.6-4.5 ms (measured here) for the 458,752 entries of one zoneout mask at (T, B, H) = (28, 128, 128); the two
masks took a sixth to a fifth of that LSTM's whole training step. Here each entry depends only on the key and
its own index, so the C++ engine fills a mask on every core with vectorized integer code in about 0.15 ms
(``bernoulli_mask`` in ``csrc/engine.cpp``), and the torch operations below give the very same bits wherever
that is not built (and on a GPU). The key comes from torch's generator, so ``torch.manual_seed`` fixes every
mask, on the CPU and on a GPU alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import fast

WORD = 2**32
MIX_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)


def ones_with_probability(p: float, shape: tuple, like: Tensor) -> Tensor:
    """A mask of ``shape`` in ``like``'s dtype and device, each entry 1 with probability p, else 0."""
    numel = math.prod(shape)
    if numel >= WORD:
        raise ValueError(f"a mask holds fewer than 2**32 entries, asked for {tuple(shape)}")
    key = [int(k) for k in torch.randint(0, WORD, (2,), dtype=torch.int64)]  # k0, k1
    threshold = int(p * WORD)  # P(word < threshold) = threshold / 2^32 = p (to 2^-32)
    if fast.usable(like):
        mask = fast.extension().bernoulli_mask(*key, threshold, numel, like.dtype)  # (numel,)
    else:
        mask = (words(key, numel, like.device) < threshold).to(like.dtype)  # (numel,)
    return mask.view(shape)


def words(key: list[int], numel: int, device) -> Tensor:
    """word_0 .. word_{numel-1} of the module docstring as int64 tensor entries in [0, 2^32)."""
    index = torch.arange(numel, dtype=torch.int64, device=device)  # (numel,)
    inner = mix(index.bitwise_xor_(key[0]))
    return mix(inner.add_(key[1]).bitwise_and_(WORD - 1))


def mix(x: Tensor) -> Tensor:
    """lowbias32 on int64 entries in [0, 2^32), in place."""
    for shift, multiplier in zip((16, 15), MIX_MULTIPLIERS):
        x = _times(x.bitwise_xor_(x >> shift), multiplier)
    return x.bitwise_xor_(x >> 16)


def _times(x: Tensor, multiplier: int) -> Tensor:
    """x * multiplier mod 2^32 for x in [0, 2^32), in halves so that no int64 product overflows (each < 2^48)."""
    high = (x * (multiplier >> 16)).bitwise_and_(0xFFFF).bitwise_left_shift_(16)  # (x * m_hi mod 2^16) 2^16
    return high.add_(x.mul_(multiplier & 0xFFFF)).bitwise_and_(WORD - 1)
