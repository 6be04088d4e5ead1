"""The command-line faces, each thin over its service: ``adamix-run`` (run.py, with preflight.py checking the
overrides before Hydra and sweep_failures.py collecting a multirun's failed points), ``adamix-evaluate``
(evaluate.py over adamix_runner.evaluate) and ``adamix-export`` (export.py over adamix_runner.export).
``adamix-table`` and ``adamix-report`` are the faces of their packages (tables/cli.py, report/cli.py).

No library module imports these (an import-linter contract in ``make lint``).
"""
