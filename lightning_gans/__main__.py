"""``python -m lightning_gans`` is the ``lightning-gans`` command."""

from lightning_gans.cli import main

if __name__ == "__main__":
    main()
