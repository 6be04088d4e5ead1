"""AdaptationSpec: what to put into a model, validated on construction.

Methods (method reference §5, §7):

=============  ==========================================================================================
``adamix``      AdaMix: a mixture of ``num_experts`` bottleneck adapters after each FFN output (§1-§4)
``adapter``     one bottleneck adapter at AdaMix's place (AdaMix with M = 1; the control of every comparison)
``pfeiffer``    the same single adapter after the FFN output, under the baseline's own name (Pfeiffer et al.)
``houlsby``     two single adapters per layer: after the attention output and after the FFN output
``lora``        LoRA on query and value (GPT-2: the Q and V slices of the fused ``c_attn``)
``adamix_lora`` AdaMix over LoRA experts (§5.1): A experts [M, r, in], B experts [M, out, r]
``bitfit``      only the backbone's biases train
``prefix``      prefix-tuning with the reparameterisation MLP (BERT/RoBERTa only)
``full``        full fine-tuning: every backbone weight trains
``unipelt``     UniPELT (Mao et al., 2022): the adapter, prefix and LoRA modules above, each scaled by its own
                learned gate; ``components`` picks them (AP: adapter + prefix, APL: all three); see :mod:`.unipelt`
``head``        only the task head trains (a linear probe; on a prompt head: LiST's head-only row)
``prompt_tuning`` soft prompt tuning: ``prefix_length`` input embeddings replace filler slots of a prompt
=============  ==========================================================================================

``adapter_form`` (adapter methods): ``expert_soup`` is the official AdaMix adapter (GELU, biases; after the FFN
output, Houlsby also after the attention output); ``list`` is LiST's adapter (fewshot reference §2.5): linear
(no activation), no biases, after both sub-layers' output projections, weights N(0, ``init_std``).

The classification head trains with every method (with ``train_pooler``, the pooler it reads trains too).
``share`` names the projection shared by all experts:
for adapters ``up`` is the r -> d projection; for LoRA experts A is the down factor (d -> r) and B the up
factor (r -> d), so ``share="up"`` shares B (the official NLG ``--share_A 0 --share_B 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .adapter import ACTIVATIONS, EXPERT_INITS, SHARE_MODES, UP_INITS
from .routing import INFERENCE_MODES
from .targets import LORA_TARGET_PRESETS

METHODS = (
    "adamix", "adapter", "pfeiffer", "houlsby", "lora", "adamix_lora", "bitfit", "prefix", "full", "unipelt", "head",
    "prompt_tuning",
)  # fmt: skip
ADAPTER_FORMS = ("expert_soup", "list")
MIXTURE_METHODS = ("adamix", "adamix_lora")  # the methods whose num_experts may exceed 1
UNIPELT_COMPONENTS = ("adapter", "prefix", "lora")


@dataclass(frozen=True)
class AdaptationSpec:
    """What to put into the model. ``adapter`` is AdaMix with one expert (a plain bottleneck adapter).

    ``adapter_dim`` is the bottleneck size of the adapter methods and is ignored by the others. LoRA uses
    ``lora_rank`` (r), ``lora_alpha`` (scaling alpha / r) and ``lora_dropout``; prefix-tuning uses
    ``prefix_length`` and ``prefix_hidden`` (the reparameterisation MLP's width). ``adapter_activation`` is the
    bottleneck's nonlinearity (:data:`.adapter.ACTIVATIONS`). ``lora_shared_init`` starts every LoRA layer from
    the same A (the official NLG GPT-2 deep-copies one block into all layers). ``components`` is read by
    ``unipelt`` only.
    """

    method: str
    adapter_dim: int
    num_experts: int = 1
    share: str = "up"  # official default: one shared up-projection, M down-projections (reference §3)
    inference: str = "merge"
    fixed_expert: int = 0
    init_std: float = 0.02
    expert_init: str = "independent"  # official NLU: every expert its own N(0, 0.02) draw (reference §1.4)
    up_init: str = "normal"  # official NLU: the up-projection is N(0, 0.02) too, not zero
    lora_rank: int = 8  # LoRA paper, RoBERTa/BERT GLUE (GPT-2 NLG and AdaMix-LoRA use 4)
    lora_alpha: float = 16.0  # LoRA paper, RoBERTa GLUE (GPT-2 NLG and AdaMix-LoRA use 32)
    lora_dropout: float = 0.0
    prefix_length: int = 10  # UniPELT's prefix length (the source of the paper's prefix-tuning row)
    prefix_hidden: int = 512  # Li & Liang (2021) reparameterisation width
    adapter_activation: str = "gelu"  # official NLU ExpertSoup (the NLG one: "gelu_tanh")
    lora_shared_init: bool = False
    components: tuple[str, ...] = UNIPELT_COMPONENTS
    adapter_form: str = "expert_soup"
    train_pooler: bool = False  # official: BERT's pretrained pooler stays frozen; true trains it with the head
    lora_targets: str = "qv"  # LoRA placement preset (targets.LORA_TARGET_PRESETS); qv: the paper's query/value

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.adapter_dim <= 0:
            raise ValueError(f"adapter_dim must be > 0, got {self.adapter_dim}")
        if self.num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {self.num_experts}")
        if self.method not in MIXTURE_METHODS and self.num_experts != 1:
            raise ValueError(f"method {self.method!r} has one expert, got num_experts={self.num_experts}")
        if self.share not in SHARE_MODES:
            raise ValueError(f"share must be one of {SHARE_MODES}, got {self.share!r}")
        if self.inference not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {INFERENCE_MODES}, got {self.inference!r}")
        if not 0 <= self.fixed_expert < self.num_experts:
            raise ValueError(f"fixed_expert must be in [0, {self.num_experts}), got {self.fixed_expert}")
        if self.expert_init not in EXPERT_INITS:
            raise ValueError(f"expert_init must be one of {EXPERT_INITS}, got {self.expert_init!r}")
        if self.up_init not in UP_INITS:
            raise ValueError(f"up_init must be one of {UP_INITS}, got {self.up_init!r}")
        if self.adapter_form not in ADAPTER_FORMS:
            raise ValueError(f"adapter_form must be one of {ADAPTER_FORMS}, got {self.adapter_form!r}")
        if self.init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {self.init_std}")
        if self.lora_rank <= 0:
            raise ValueError(f"lora_rank must be > 0, got {self.lora_rank}")
        if self.lora_alpha <= 0:
            raise ValueError(f"lora_alpha must be > 0, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.prefix_length <= 0 or self.prefix_hidden <= 0:
            raise ValueError(
                f"prefix_length and prefix_hidden must be > 0, got {self.prefix_length}, {self.prefix_hidden}"
            )
        if self.adapter_activation not in ACTIVATIONS:
            raise ValueError(
                f"adapter_activation must be one of {tuple(ACTIVATIONS)}, got {self.adapter_activation!r}"
            )
        if self.lora_targets not in LORA_TARGET_PRESETS:
            raise ValueError(f"lora_targets must be one of {tuple(LORA_TARGET_PRESETS)}, got {self.lora_targets!r}")
        object.__setattr__(self, "components", tuple(self.components))
        unknown = [c for c in self.components if c not in UNIPELT_COMPONENTS]
        if unknown or not self.components or len(set(self.components)) != len(self.components):
            raise ValueError(
                f"components must be distinct names among {UNIPELT_COMPONENTS} (at least one), "
                f"got {list(self.components)}"
            )

    @property
    def lora_scaling(self) -> float:
        return self.lora_alpha / self.lora_rank
