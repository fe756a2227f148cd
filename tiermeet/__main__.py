"""``python -m tiermeet`` runs the command line."""

from tiermeet.cli import main

main()
