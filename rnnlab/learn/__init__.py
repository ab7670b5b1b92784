"""The learner's tools: answers to the questions people ask about recurrent networks, each checked.

    shapes.py     every parameter and tensor shape of a configuration, verified on torch.nn (rnnlab shapes)
    heatmaps.py   a trained model's gates and states over one input, as pictures (rnnlab inspect)
    gradients.py  vanishing gradients, measured: ||dL/dh_t|| of RNN, LSTM, GRU (rnnlab gradients)
    scratch.py    RNN and LSTM in NumPy with a hand-written backward pass
    tour.py       rnnlab.nn next to torch.nn, printed (the demo's first part)
"""
