"""The ``seismo`` command line: the typer app and its option parsing, one module per command
group. Parsing only: each command hands its settings to the package that does the work.
"""
