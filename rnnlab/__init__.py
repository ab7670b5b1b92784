"""rnnlab: recurrent neural networks from first principles, on PyTorch."""

__version__ = "0.1.0"
