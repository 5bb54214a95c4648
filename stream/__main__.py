"""``python -m stream`` runs the seismo CLI."""

from stream.cli import main

main()
