"""Autoencoder architectures (modules only: no device, scaling or training logic) and the
catalogue that maps an artifact's architecture name to its classes.
"""
