"""UniPELT on tiny random BERT: the gates' arithmetic, each gate's limits against the runner's plain methods, and the
paper's #Param for BERT-base and RoBERTa-large (meta device, no download)."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.nn import functional as F
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

from adamix_runner.adaptation import (
    AdaptationSpec,
    adaptation_state_dict,
    apply,
    count_parameters,
    head_state_dict,
    load_head_state_dict,
)
from adamix_runner.adaptation.unipelt import Gate, GatedAdaptedModule, GatedLoRALayer, GatedPrefixSelfAttention
from adamix_runner.export import export_peft_lora, fold_lora

from .test_adaptation import HIDDEN, IDS, bert, gpt2
from .test_methods import perturb
from .test_param_counts import ROBERTA_LARGE

SMALL = {"adapter_dim": 4, "prefix_length": 3, "prefix_hidden": 8, "lora_rank": 2, "lora_alpha": 2.0}
ALL = ("adapter", "prefix", "lora")
GATED = {"adapter": GatedAdaptedModule, "prefix": GatedPrefixSelfAttention, "lora": GatedLoRALayer}
MASK = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1] * 7, [1, 1, 0, 0, 0, 0, 0]])


def unipelt(components=ALL, method="unipelt", **spec):
    model = bert()
    torch.manual_seed(1)
    extra = {"components": components} if method == "unipelt" else {}
    apply(model, AdaptationSpec(method=method, **{**SMALL, **extra, **spec}), seed=0)
    return model


def set_gates(model, component: str, open_: bool) -> None:
    """Weight 0 and bias ±1e4: sigmoid is exactly 1 or 0 for every input."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, GATED[component]):
                module.gate.linear.weight.zero_()
                module.gate.linear.bias.fill_(1e4 if open_ else -1e4)


def copy_shared(source, target) -> None:
    """Load into ``target`` every adaptation tensor of ``source`` it has (names without the prefix wrapper's
    ``.base``, which moves LoRA's query/value one level down), and the head."""
    given = {name.replace(".self.base.", ".self."): t for name, t in adaptation_state_dict(source).items()}
    with torch.no_grad():
        for name, tensor in adaptation_state_dict(target).items():
            tensor.copy_(given[name.replace(".self.base.", ".self.")])
    load_head_state_dict(target, head_state_dict(source))


def logits(model):
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).logits


def test_gate_is_the_mean_over_positions_of_a_sigmoid():
    gate = Gate(HIDDEN)
    x = torch.randn(3, 5, HIDDEN)
    expected = torch.stack(
        [torch.sigmoid(x[b] @ gate.linear.weight[0] + gate.linear.bias[0]).mean() for b in range(3)]
    )
    out = gate(x)
    assert out.shape == (3, 1, 1)
    torch.testing.assert_close(out.view(3), expected)
    assert gate.inference_numel() == HIDDEN + 1


@pytest.mark.parametrize("closed", ["adapter", "lora"])
def test_a_closed_gate_removes_its_component(closed):
    full = perturb(unipelt())
    reduced = unipelt(tuple(c for c in ALL if c != closed))
    copy_shared(full, reduced)
    before = logits(full)
    set_gates(full, closed, open_=False)
    torch.testing.assert_close(logits(full), logits(reduced), atol=1e-6, rtol=0)
    assert not torch.allclose(before, logits(full), atol=1e-4)  # the component did contribute


def test_a_closed_prefix_gate_zeroes_the_prefixes_but_keeps_their_slots():
    """UniPELT scales the prefix keys and values: a closed gate leaves P zero keys, each taking exp(0) of the softmax
    mass with a zero value, so the model no longer depends on the prefix but is not the prefix-free model."""
    full = perturb(unipelt())
    reduced = unipelt(("adapter", "lora"))
    copy_shared(full, reduced)
    set_gates(full, "prefix", open_=False)
    closed = logits(full)
    with torch.no_grad():
        for p in full.bert.encoder.prefix_encoder.parameters():
            p.add_(torch.randn_like(p))
    torch.testing.assert_close(logits(full), closed)  # nothing of the prefix reaches the output
    assert not torch.allclose(closed, logits(reduced), atol=1e-4)


@pytest.mark.parametrize(("component", "plain"), [("lora", {"method": "lora"}), ("prefix", {"method": "prefix"})])
def test_an_open_gate_alone_is_the_plain_method(component, plain):
    gated = perturb(unipelt((component,), adapter_activation="relu"))
    set_gates(gated, component, open_=True)
    reference = unipelt(method=plain.pop("method"), adapter_activation="relu", **plain)
    copy_shared(gated, reference)
    torch.testing.assert_close(logits(gated), logits(reference), atol=1e-6, rtol=0)


def test_the_adapter_block_is_unipelts_pfeiffer_adapter_by_hand():
    """UniPELT's BertOutput with its Pfeiffer adapter (adapters/layer.py L125-138, L371-374; modeling.py L113-139),
    computed by hand from the wrapped block's weights, in train mode so that the dropout is the same draw: exactly
    LN(h + g(z) A(z) + a), h = dropout(dense(x)), z = LN(h + a), A = up(relu(down(.))) with biases."""
    model = bert(hidden_dropout_prob=0.1)
    apply(model, AdaptationSpec(method="unipelt", components=("adapter",), adapter_activation="relu", **SMALL), 0)
    model = perturb(model).train()
    block = model.bert.encoder.layer[1].output
    assert isinstance(block, GatedAdaptedModule) and type(block.base).__name__ == "BertOutput"
    x, a = torch.randn(3, 5, 37), torch.randn(3, 5, HIDDEN)
    torch.manual_seed(7)
    ours = block(x, a)
    dense, norm, down, up, gate = (
        block.base.dense,
        block.base.LayerNorm,
        block.adapter.down,
        block.adapter.up,
        block.gate,
    )
    layer_norm = partial(F.layer_norm, normalized_shape=(HIDDEN,), weight=norm.weight, bias=norm.bias, eps=norm.eps)
    with torch.no_grad():
        torch.manual_seed(7)
        h = F.dropout(x @ dense.weight.T + dense.bias, p=0.1, training=True)
        z = layer_norm(h + a)
        g = torch.sigmoid(z @ gate.linear.weight.T + gate.linear.bias).mean(dim=1, keepdim=True)
        adapter = F.relu(z @ down.weight[0].T + down.bias[0]) @ up.weight[0].T + up.bias[0]
        expected = layer_norm(h + g * adapter + a)
    assert torch.equal(ours, expected)
    assert (block(x, a) - ours).abs().max() > 0  # train mode: another dropout draw, so dropout is really applied


def test_the_prefix_encoder_starts_as_berts_init():
    """UniPELT's prefix modules get BERT's init_weights (N(0, 0.02), zero biases), not PyTorch's N(0, 1)."""
    torch.manual_seed(0)
    encoder = unipelt(("prefix",), prefix_length=40, prefix_hidden=64).bert.encoder.prefix_encoder
    assert abs(encoder.embedding.weight.std().item() - 0.02) < 0.002
    for linear in (encoder.mlp[0], encoder.mlp[2]):
        assert abs(linear.weight.std().item() - 0.02) < 0.002 and not linear.bias.any()


def test_lora_gate_replaces_the_scaling_when_alpha_equals_rank():
    model = perturb(unipelt(("lora",)))
    layer = next(m for m in model.modules() if isinstance(m, GatedLoRALayer))
    assert layer.scaling == 1.0
    x = torch.randn(2, 5, HIDDEN)
    with torch.no_grad():
        expected = layer.base(x) + layer.gate(x) * (x @ layer.lora_A.weight[0].T @ layer.lora_B.weight[0].T)
        torch.testing.assert_close(layer(x), expected)


def test_gates_train_and_are_saved():
    model = perturb(unipelt())  # off the zero LoRA B, which would give its gates no gradient
    gates = [name for name in adaptation_state_dict(model) if ".gate." in name]
    assert len(gates) == 2 * 2 * (1 + 1 + 2)  # 2 layers x (weight, bias) x (adapter, prefix, query and value LoRA)
    model.train()
    model(input_ids=IDS, attention_mask=MASK).logits.sum().backward()
    assert all(m.gate.linear.weight.grad.abs().sum() > 0 for m in model.modules() if hasattr(m, "gate"))


def test_prefix_component_refuses_gpt2_before_wrapping_anything():
    model = gpt2()
    with pytest.raises(ValueError, match="BERT/RoBERTa self-attention only"):
        apply(model, AdaptationSpec(method="unipelt", adapter_dim=4), seed=0)
    assert not [m for m in model.modules() if isinstance(m, (GatedAdaptedModule, GatedLoRALayer))]


def test_export_refuses_gates_with_the_reason():
    model = unipelt(("lora",))
    for export in (lambda: export_peft_lora(model, None, "unused"), lambda: fold_lora(model)):
        with pytest.raises(ValueError, match="UniPELT's gates depend on each input"):
            export()


@pytest.mark.parametrize("bad", [[], ["adapter", "adapter"], ["bitfit"]])
def test_spec_rejects_bad_components(bad):
    with pytest.raises(ValueError, match="components must be distinct names"):
        AdaptationSpec(method="unipelt", adapter_dim=4, components=bad)


def meta_counts(model_cls, config, components):
    with torch.device("meta"):
        model = model_cls(config)
    spec = {"adapter_dim": 48, "lora_rank": 8, "lora_alpha": 8.0, "prefix_length": 10, "prefix_hidden": 512}
    apply(model, AdaptationSpec(method="unipelt", components=components, **spec), seed=0)
    return count_parameters(model)


# Hand arithmetic (d hidden, L layers): adapter L(2·48d + 48 + d), prefix 2·L·10·d, LoRA 2L·2·8d, gates (d + 1) each:
# L for the adapters, L for the prefixes, 2L for LoRA (query and value). Trainable adds the prefix embedding and
# MLP (10d + d·512 + 512 + 512·2Ld + 2Ld) and the head.
@pytest.mark.parametrize(
    ("components", "inference", "trainable"),
    [(("adapter", "prefix"), 1_097_304, 10_772_315), (ALL, 1_410_672, 11_085_683)],
)
def test_bert_base_counts(components, inference, trainable):
    c = meta_counts(BertForSequenceClassification, BertConfig(num_labels=3), components)
    assert c.inference == inference
    assert c.trainable == trainable
    assert c.head == 2_307


@pytest.mark.parametrize(
    ("components", "inference", "trainable"),
    [(("adapter", "prefix"), 2_925_744, 29_236_915), (ALL, 3_761_376, 30_072_547)],
)
def test_roberta_large_counts(components, inference, trainable):
    c = meta_counts(RobertaForSequenceClassification, RobertaConfig(**ROBERTA_LARGE), components)
    assert c.inference == inference
    assert c.trainable == trainable
    assert c.backbone == 354_310_144
