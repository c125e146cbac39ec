"""``python -m qmio_hpc`` is the ``qmio`` command."""

from .cli import main

main()
