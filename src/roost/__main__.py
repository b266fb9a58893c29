"""``python -m roost``: the same as the ``roost`` command."""

from roost.cli import main

main(prog_name="roost")
