"""``python -m quantrain`` is the same as the ``quantrain`` command."""

from quantrain.cli import main

if __name__ == "__main__":
    main()
