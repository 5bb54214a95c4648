"""The model registry: versions in a store (a folder or an fsspec URL), the current pointer
in Redis, verification, promotion and the watcher that hot-swaps a running scorer.
"""
