"""Subcommands of the ``eggroll-snn`` command line (see :mod:`eggroll_snn.cli`)."""
