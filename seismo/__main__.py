"""``python -m seismo`` runs the seismo command line."""

from seismo.cli import main

main()
