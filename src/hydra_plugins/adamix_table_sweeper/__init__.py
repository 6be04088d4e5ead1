"""Hydra sweeper plugin: one multirun over the cells of a declared table (adamix_runner.tables).

Hydra loads sweepers from the `hydra_plugins` namespace only (hydra.core.plugins), hence this package outside
adamix_runner; it holds the plugin's glue and nothing else.
"""
