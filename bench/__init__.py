"""Discrete-event benchmark of the scaling policies (``python -m bench``).

The simulator runs the product's real scaling code from ``lambdas/`` unmodified (imported as installed packages).
"""
