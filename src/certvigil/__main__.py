"""``python -m certvigil``."""

from certvigil.cli import main

# Guarded: worker processes of `certvigil serve --workers N` are spawned, and a spawned
# child imports this module again (as __mp_main__); it must not run the CLI a second time.
if __name__ == "__main__":
    main()
