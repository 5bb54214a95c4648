"""Settings of every command: pydantic-settings models read from flags, ``SEISMO_*``
variables and a config file, and the defaults they share.
"""
