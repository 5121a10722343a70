"""Subcommands of `medbridge`, one module per group; `bridge/cli.py` assembles them."""
