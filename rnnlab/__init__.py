"""rnnlab: recurrent neural networks from first principles, on PyTorch."""

__version__ = "0.1.0"


def explain_shapes(*args, **kwargs):
    """Every parameter and tensor shape of a torch.nn RNN/LSTM/GRU configuration, checked on torch.nn: see
    ``rnnlab.shapes.explain_shapes``."""
    from .shapes import explain_shapes as explain
    return explain(*args, **kwargs)
