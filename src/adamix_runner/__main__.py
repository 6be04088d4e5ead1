"""`python -m adamix_runner` is `adamix-run`."""

from adamix_runner.cli.run import main

main()
