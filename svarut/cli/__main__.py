"""``python -m svarut.cli``: the ``svarut`` command."""

from svarut.cli import main

main()
