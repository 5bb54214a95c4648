"""``seismo demo``: the whole pipeline on local services, a live view and an HTML report.
"""
