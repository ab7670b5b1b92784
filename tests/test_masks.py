"""rnnlab's random masks (zoneout, recurrent dropout): the generator of masks.py's docstring, the same bits from
the C++ engine and from torch operations, with the probability asked for and no pattern between entries."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab.nn import fast, masks
from rnnlab.nn.masks import ones_with_probability

WORD = 2**32


def lowbias32(x: int) -> int:
    """The docstring's mix, on Python integers."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) % WORD
    x ^= x >> 15
    x = (x * 0x846CA68B) % WORD
    return x ^ (x >> 16)


def test_words_are_the_documented_hash_of_the_index():
    key = [0xDEADBEEF, 0x01234567]
    words = masks.words(key, 3000, "cpu")
    for i in list(range(1000)) + [2999]:
        assert int(words[i]) == lowbias32((lowbias32(i ^ key[0]) + key[1]) % WORD)


@pytest.mark.parametrize("numel", [1, 7, 8, 1000, 100_003])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_engine_draws_the_same_bits_as_torch_operations(numel, dtype):
    generator = torch.Generator().manual_seed(numel)
    for p in (0.0, 0.1, 0.5, 0.97):
        key = [int(k) for k in torch.randint(0, WORD, (2,), generator=generator)]
        threshold = int(p * WORD)
        ours = fast.extension().bernoulli_mask(*key, threshold, numel, dtype)
        assert ours.dtype == dtype
        assert torch.equal(ours, (masks.words(key, numel, "cpu") < threshold).to(dtype))


def test_a_seed_fixes_the_mask_and_the_next_draw_differs():
    like = torch.empty(0)
    torch.manual_seed(5)
    first, second = ones_with_probability(0.5, (64, 32), like), ones_with_probability(0.5, (64, 32), like)
    torch.manual_seed(5)
    assert torch.equal(ones_with_probability(0.5, (64, 32), like), first)
    assert (first != second).float().mean() > 0.4  # independent masks disagree on half the entries


@pytest.mark.parametrize("p", [0.03, 0.25, 0.5, 0.9])
def test_entries_are_one_with_probability_p_and_independent(p):
    torch.manual_seed(0)
    mask = ones_with_probability(p, (1000, 1000), torch.empty(0, dtype=torch.float64))  # (rows, units)
    assert mask.shape == (1000, 1000) and mask.dtype == torch.float64
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    sigma = math.sqrt(p * (1 - p) / mask.numel())
    assert abs(mask.mean().item() - p) < 5 * sigma
    centred = (mask - p).flatten()
    for lag in (1, 2, 8, 1000):  # neighbours in a row, units 8 apart (one vector), the same unit a row later
        correlation = (centred[:-lag] * centred[lag:]).mean().item() / (p * (1 - p))
        assert abs(correlation) < 5 / math.sqrt(mask.numel())
    rows = mask.mean(1)  # each row on its own has the right rate too
    assert (rows - p).abs().max().item() < 6 * math.sqrt(p * (1 - p) / 1000)


def test_both_paths_of_ones_with_probability_agree(monkeypatch):
    like = torch.empty(0)
    torch.manual_seed(9)
    drawn = ones_with_probability(0.3, (33, 17), like)
    monkeypatch.setattr(fast, "usable", lambda x: False)  # the torch operations, as on a GPU or without C++
    torch.manual_seed(9)
    assert torch.equal(ones_with_probability(0.3, (33, 17), like), drawn)


def test_a_mask_of_two_to_the_32_entries_is_refused_before_any_allocation():
    with pytest.raises(ValueError, match="2\\*\\*32"):
        ones_with_probability(0.5, (2**16, 2**16), torch.empty(0))
