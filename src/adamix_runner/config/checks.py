"""The checks a composed config passes before anything heavy runs, and `cfg.peft` as the method to apply.

`validate` rejects impossible values and combinations with a message that says what to set instead. A choice that
belongs to a lower module (prompt formats, truncations, label rows, the template parser) is imported from it, so
these imports point down, never up.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from adamix_runner.adaptation import AdaptationSpec
from adamix_runner.adaptation.targets import POOLER_MODULES, PREFIX_TARGETS
from adamix_runner.config.strings import check_prompt_strings
from adamix_runner.errors import UserError
from adamix_runner.models.prompt import LABEL_ROWS
from adamix_runner.tasks import GENERATION_FAMILIES
from adamix_runner.tasks.encode_lm import PROMPT_FORMATS
from adamix_runner.tasks.encode_prompt import TRUNCATIONS, parse_template

SELECT_CHOICES = ("last", "best")
LOGGER_KINDS = ("console", "jsonl", "wandb")
PRECISION_CHOICES = ("no", "fp16", "bf16")
# transformers' built-in attention kernels; a name with "/" is a hub kernel (the `kernels` package loads it).
ATTENTION_CHOICES = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(message)


def _choice(value: str, choices: tuple[str, ...], key: str) -> None:
    _require(value in choices, f"{key}={value!r} is not one of {', '.join(choices)}.")


def check_resolvable(cfg: DictConfig) -> None:
    """An interpolation that cannot resolve (`${pkg_path:...}` of a package not installed) is the user's to fix;
    OmegaConf wraps our resolver's UserError in its own errors, so the UserError is found in the chain."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or UserError(str(error).split("\n")[0])) from None


def validate(cfg: DictConfig) -> None:
    """Reject impossible values and combinations before anything heavy runs."""
    train, data = cfg.train, cfg.data
    adaptation_spec(cfg)
    weight = cfg.peft.consistency_weight
    _require(weight is None or weight >= 0, "peft.consistency_weight must be >= 0 (0 disables the second view).")
    _require(0 <= train.label_smoothing < 1, f"train.label_smoothing must be in [0, 1), got {train.label_smoothing}.")
    _require(train.warmup_steps >= 0, f"train.warmup_steps must be >= 0, got {train.warmup_steps}.")
    _require(cfg.generation.num_beams >= 1, f"generation.num_beams must be >= 1, got {cfg.generation.num_beams}.")
    _require(
        cfg.generation.max_new_tokens >= 1,
        f"generation.max_new_tokens must be >= 1, got {cfg.generation.max_new_tokens}.",
    )
    _check_model_fits_task(cfg)
    _choice(cfg.model.prompt_format, PROMPT_FORMATS, "model.prompt_format")
    _check_prompt(cfg)
    _choice(train.select, SELECT_CHOICES, "train.select")
    _choice(train.no_decay_rule, ("modules", "names"), "train.no_decay_rule")
    _choice(train.mixed_precision, PRECISION_CHOICES, "train.mixed_precision")
    attention = cfg.model.attn_implementation
    if attention and "/" not in attention:
        _choice(attention, ATTENTION_CHOICES, "model.attn_implementation")
    _require(
        not (attention or "").startswith("flash_attention") or train.mixed_precision != "no",
        f"model.attn_implementation={attention} takes fp16 or bf16 inputs only; set train.mixed_precision=bf16 "
        "(or fp16), or model.attn_implementation=sdpa for fp32.",
    )
    _require(train.num_workers >= 0, f"train.num_workers must be >= 0, got {train.num_workers}.")
    for key in ("eval_every_steps", "checkpoint_every_steps", "max_grad_norm", "weight_decay"):
        _require(train[key] >= 0, f"train.{key} must be >= 0 (0 turns it off), got {train[key]}.")
    _require(train.log_every_steps >= 1, f"train.log_every_steps must be >= 1, got {train.log_every_steps}.")
    _require(train.adam_epsilon > 0, f"train.adam_epsilon must be > 0, got {train.adam_epsilon}.")
    fraction = cfg.task.validation_fraction
    _require(0 < fraction < 1, f"task.validation_fraction must be in (0, 1), got {fraction}.")
    _require(cfg.generation.batch_size >= 1, f"generation.batch_size must be >= 1, got {cfg.generation.batch_size}.")
    for kind in cfg.logger.kinds:
        _choice(kind, LOGGER_KINDS, "logger.kinds")
    _require(train.lr > 0, f"train.lr must be > 0, got {train.lr}.")
    _require(train.batch_size > 0, f"train.batch_size must be > 0, got {train.batch_size}.")
    _require(train.eval_batch_size > 0, f"train.eval_batch_size must be > 0, got {train.eval_batch_size}.")
    _require(
        train.keep_last_checkpoints >= 1,
        f"train.keep_last_checkpoints must be >= 1, got {train.keep_last_checkpoints}.",
    )
    _require(
        train.checkpoint_every_minutes >= 0,
        f"train.checkpoint_every_minutes must be >= 0 (0: no checkpoints by the clock), "
        f"got {train.checkpoint_every_minutes}.",
    )
    _require(train.grad_accum >= 1, f"train.grad_accum must be >= 1, got {train.grad_accum}.")
    _require(train.epochs >= 0 and train.max_steps >= 0, "train.epochs and train.max_steps must be >= 0.")
    _require(
        cfg.dry_run or cfg.eval_only or train.epochs > 0 or train.max_steps > 0,
        "Nothing to train: set train.epochs > 0 or train.max_steps > 0 (or dry_run=true / eval_only=true).",
    )
    _require(0 <= train.warmup_ratio < 1, f"train.warmup_ratio must be in [0, 1), got {train.warmup_ratio}.")
    _require(data.max_seq_length > 0, f"data.max_seq_length must be > 0, got {data.max_seq_length}.")
    for key in ("max_train_samples", "max_eval_samples"):
        value = data[key]
        _require(value is None or value > 0, f"data.{key} must be a positive number or null, got {value}.")
    _require(
        not cfg.eval_only or cfg.adapter_path,
        "eval_only=true needs adapter_path=<run folder>/adapter (the folder a completed run wrote).",
    )
    _require(
        not cfg.model.pretrained or cfg.model.hub_id or cfg.model.path,
        f"model '{cfg.model.name}' has neither model.hub_id nor model.path; set one, or model.pretrained=false.",
    )
    _require(
        cfg.model.pretrained or cfg.model.architecture,
        f"model.pretrained=false needs model.architecture (config keys) for '{cfg.model.name}'.",
    )


ENCODER_ONLY = ("bert", "roberta", "xlm-roberta")
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2}  # positions held back for the padding index


def max_positions(architecture) -> int | None:
    """The longest sequence a model embeds, from its YAML architecture (None when the YAML does not say)."""
    architecture = architecture or {}
    positions = architecture.get("max_position_embeddings") or architecture.get("n_positions")
    return positions and positions - POSITION_OFFSET.get(architecture.get("model_type"), 0)


# The official adapters' GELU: exact in the NLU ExpertSoup, the tanh approximation in NLG/src/expert_soup.py.
NLU_ADAPTER_ACTIVATION, NLG_ADAPTER_ACTIVATION = "gelu", "gelu_tanh"


def _check_model_fits_task(cfg: DictConfig) -> None:
    """Model, task and method must go together; the YAML's architecture names the model type and its positions
    without a download."""
    architecture = cfg.model.architecture or {}
    model_type = architecture.get("model_type")
    if cfg.task.family in GENERATION_FAMILIES and model_type in ENCODER_ONLY:
        raise UserError(
            f"task={cfg.task.name} generates text, but model={cfg.model.name} is an encoder-only {model_type}; "
            "use a causal LM: model=gpt2-medium, model=gpt2, model=tiny-gpt2 or model=smollm2."
        )
    if cfg.peft.method == "prefix" and model_type is not None and model_type not in PREFIX_TARGETS:
        raise UserError(
            f"peft=prefix is implemented for BERT/RoBERTa encoders only, and model={cfg.model.name} is a "
            f"{model_type}; for it use peft=lora, peft=adamix_lora, peft=adapter or peft=adamix."
        )
    if cfg.model.get("train_pooler") and model_type is not None and model_type not in POOLER_MODULES:
        raise UserError(
            f"model.train_pooler=true trains the pooler that a BERT classification head reads, and "
            f"model={cfg.model.name} is a {model_type} without one; set model.train_pooler=false."
        )
    positions = max_positions(architecture)
    if positions and cfg.data.max_seq_length > positions:
        raise UserError(
            f"data.max_seq_length={cfg.data.max_seq_length} is longer than model={cfg.model.name} can embed "
            f"({positions} positions); set data.max_seq_length={positions} or less."
        )


def _check_prompt(cfg: DictConfig) -> None:
    """A prompt task: a parsable template, one label word per class, last-step reporting (no validation set)."""
    prompt = cfg.task.prompt
    check_prompt_strings(prompt)
    if prompt.template is None:
        _require(cfg.peft.method != "prompt_tuning", "peft=prompt_tuning needs a prompt task (task.prompt.template).")
        _require(prompt.label_words is None, "task.prompt.label_words needs task.prompt.template as well.")
        return
    _choice(prompt.truncation, TRUNCATIONS, "task.prompt.truncation")
    _choice(prompt.label_rows, LABEL_ROWS, "task.prompt.label_rows")
    _require(cfg.task.family not in GENERATION_FAMILIES, f"task.prompt does not apply to {cfg.task.name}.")
    parse_template(prompt.template)
    _require(prompt.label_words is not None, "task.prompt.template needs task.prompt.label_words=[word per class].")
    words, names = list(prompt.label_words), prompt.label_names
    _require(len(words) >= 2, f"task.prompt.label_words needs one word per class (>= 2), got {words}.")
    _require(not names or len(names) == len(words), f"task.prompt.label_names {names} and label_words {words} differ")
    _require(
        cfg.train.select == "last",
        "train.select=best selects on the evaluation set, and a few-shot task has no validation set: use "
        "train.select=last (the last step is reported, as in LiST).",
    )
    k, split_seed = cfg.fewshot.k, cfg.fewshot.split_seed
    _require(k is None or k > 0, f"fewshot.k must be > 0 or null (every training row), got {k}.")
    _require(split_seed is None or split_seed >= 0, f"fewshot.split_seed must be >= 0 or null, got {split_seed}.")
    _choice(cfg.fewshot.train_seed, ("run", "split"), "fewshot.train_seed")


def adaptation_spec(cfg: DictConfig, num_experts: int | None = None) -> AdaptationSpec:
    """The method to apply, from `cfg.peft`; its own checks become messages about `peft.*` keys."""
    peft = OmegaConf.to_container(cfg.peft, resolve=True)
    peft.pop("consistency_weight")
    if peft.get("adapter_activation") is None:
        generation = cfg.task.family in GENERATION_FAMILIES
        peft["adapter_activation"] = NLG_ADAPTER_ACTIVATION if generation else NLU_ADAPTER_ACTIVATION
    peft["train_pooler"] = bool(cfg.model.get("train_pooler", False))
    if num_experts is not None:
        peft["num_experts"] = num_experts
    try:
        return AdaptationSpec(**peft)
    except ValueError as error:
        raise UserError(f"peft.{error}") from error
