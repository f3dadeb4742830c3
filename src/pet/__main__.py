"""``python -m pet`` is the same as the ``pet`` command."""

from pet.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
