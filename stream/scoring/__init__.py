"""The scorer: decode a micro-batch, score it with the model, judge it against the shared (or
per-device) threshold, publish, merge the statistics, commit. Pure rules (codecs,
threshold, stats, windows, device rule, drift) live beside the loop that applies them.
"""
