"""The simulated plant: sensor data with injected anomalies, and ``seismo simulate``.
"""
