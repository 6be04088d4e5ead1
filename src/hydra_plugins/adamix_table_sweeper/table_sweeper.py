"""`hydra/sweeper=adamix_table`: every (cell x seed) of a declared table as one job of one multirun.

    adamix-run -m hydra/sweeper=adamix_table hydra.sweeper.table=table1 hydra.sweeper.profile=smoke \
        hydra.sweeper.seeds=1 [hydra.sweeper.order=[2,0,1]] [hydra/launcher=local_parallel|slurm|submitit_local] \
        [extra overrides for every job]

A table's cells differ in task, method, sizes and recipe, which a Cartesian sweep cannot express; this sweeper
hands the launcher one explicit override list per run instead, exactly the arguments `adamix-run` would get for
that run alone, so a cell lands in the same run folder either way (and a rerun skips what is completed).
Hydra's plugin scan does not see this package through an editable install's import hook, so `adamix-run`
registers the class itself (cli.main). `order` (cell indices in declaration order) is the submission order;
`adamix-table` passes PLAN's longest-first order, so an array's longest jobs start in its first wave.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class TableSweeper(Sweeper):
    """Its settings: conf/hydra/sweeper/adamix_table.yaml."""

    def __init__(
        self, table: str, profile: str, seeds: int | None, max_batch_size: int | None, order: list[int] | None = None
    ) -> None:
        self.table, self.profile, self.seeds, self.max_batch_size = table, profile, seeds, max_batch_size
        self.order = None if order is None else [int(index) for index in order]
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from adamix_runner.tables import declaration

        swept = [o.input_line for o in OverridesParser.create().parse_overrides(arguments) if o.is_sweep_override()]
        if swept:
            raise ValueError(f"hydra/sweeper=adamix_table takes single values, not sweeps: {swept}")
        decl = declaration.load(self.table)
        cells = declaration.cells(decl, self.profile)
        if self.order is not None:
            if sorted(self.order) != list(range(len(cells))):
                raise ValueError(f"hydra.sweeper.order must list each of the {len(cells)} cells once: {self.order}")
            cells = [cells[index] for index in self.order]
        jobs = declaration.job_overrides(cells, declaration.seeds(decl, self.seeds), list(arguments))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size or len(jobs)
        return [
            self.launcher.launch(jobs[start : start + size], initial_job_idx=start)
            for start in range(0, len(jobs), size)
        ]
