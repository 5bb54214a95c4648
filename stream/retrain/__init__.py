"""The retraining sidecar: a window of recent events, a lease so one retrainer works at a
time, challenger rounds judged against the champion.
"""
