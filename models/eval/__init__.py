"""Evaluation: metrics against labels, reports, and the benchmark protocols (ODDS, NAB
scoring) with their baseline detectors.
"""
