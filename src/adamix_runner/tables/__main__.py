"""`python -m adamix_runner.tables` is `adamix-table` (for installs without console scripts on PATH)."""

from adamix_runner.tables.cli import main

main()
