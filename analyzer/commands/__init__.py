"""Sub-commands of the `compile-diagnose` command line, one module each."""
