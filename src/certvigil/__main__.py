"""``python -m certvigil``."""

from certvigil.cli import main

main()
