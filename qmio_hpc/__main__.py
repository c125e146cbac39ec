"""``python -m qmio_hpc`` is the ``qmio`` command."""

from .fast_cli import main

main()
