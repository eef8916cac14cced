"""``python -m vizwatch`` is the ``vizwatch`` command."""

from vizwatch.cli import main

if __name__ == "__main__":
    main()
