"""``python -m tracereplay``."""

from tracereplay.cli import main

main()
