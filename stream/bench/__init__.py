"""Benchmarks: throughput, latency and soak (``seismo bench``), device cardinality, ODDS, NAB
and SKAB; each writes its own report.
"""
