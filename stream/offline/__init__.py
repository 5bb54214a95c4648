"""Commands on files: ``seismo train``, ``seismo evaluate`` and ``seismo produce`` (a file to
a topic).
"""
