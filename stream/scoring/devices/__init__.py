"""The per-device rule (``--threshold-scope device``): the pure rule row by row
(:mod:`.rule`), the same verdicts vectorised over a batch (:mod:`.batch`), and the
states kept in memory and written back to Redis (:mod:`.states`).
"""
