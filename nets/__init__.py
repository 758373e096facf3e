"""Pix2Pix depth networks and training (installed as ``pybokeh.nets``; needs PyTorch)."""
