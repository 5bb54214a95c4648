"""``python -m seismo`` runs the seismo command line."""

from seismo.stream.cli.app import main

main()
