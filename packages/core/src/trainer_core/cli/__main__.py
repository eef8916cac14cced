"""``python -m trainer_core.cli`` is the ``core`` command."""

from trainer_core.cli import main

if __name__ == "__main__":
    main()
