"""adamix-report: run folders -> the paper's tables (ours beside the paper's numbers) and figures.

It reads run folders only (results.json, metrics.jsonl, evaluations/*.json) and the table declarations in conf/table/,
and never imports the training stack (torch, transformers, adamix_runner.run): it runs wherever results were copied.
Parts: paper.py (the paper's numbers), declaration.py (a table's columns), runs.py (scanning run folders),
aggregate.py (mean ± std per cell), grid.py (a declared table), stats.py (confidence intervals of a difference),
baseline.py (each cell against the declared baseline), sweep.py (any sweep), render.py (md/csv/tex),
figures.py (PNG), cli.py (the command).
"""
