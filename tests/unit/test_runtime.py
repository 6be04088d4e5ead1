"""What a run executes on: precision refused where the device cannot honour it, TF32 scoped to the run, the
distributed environment of a multi-task submitit job, and the checkpoint parts that make resume exact (per-rank
RNG, GradScaler, the same step and world size on every rank)."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from adamix_runner.adaptation.mixture import ExpertLinear
from adamix_runner.adaptation.routing import Router
from adamix_runner.config.checks import validate
from adamix_runner.config.compose import compose_config
from adamix_runner.errors import UserError
from adamix_runner.run_folder import config_hash
from adamix_runner.training import checkpoint as ckpt
from adamix_runner.training import loop, runtime


def test_fp16_on_the_cpu_is_refused_with_what_to_use_instead():
    with pytest.raises(UserError, match=r"fp16 needs a CUDA GPU .* use train.mixed_precision=bf16 or no"):
        runtime.check_precision("fp16", on_cpu=True)
    runtime.check_precision("bf16", on_cpu=True)  # the CPU runs bf16 autocast for real
    runtime.check_precision("no", on_cpu=True)


def test_bf16_on_a_gpu_without_bf16_tensor_cores_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-32GB")
    with pytest.raises(UserError, match=r"bf16 on Tesla V100-SXM2-32GB: .* use train.mixed_precision=fp16"):
        runtime.check_precision("bf16", on_cpu=False)


def test_flash_attention_in_fp32_is_refused_by_validation():
    cfg = compose_config("model.attn_implementation=flash_attention_2")
    with pytest.raises(UserError, match=r"flash_attention_2 takes fp16 or bf16 inputs only"):
        validate(cfg)
    validate(compose_config("model.attn_implementation=flash_attention_2", "train.mixed_precision=bf16"))


def test_allow_tf32_changes_the_run_folder_it_changes_the_numbers():
    assert config_hash(compose_config("train.allow_tf32=true")) != config_hash(compose_config())


def test_tf32_is_scoped_to_the_block():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with runtime.tf32(True):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with runtime.tf32(False):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)


def test_the_runtime_record_says_what_ran_on_the_cpu():
    accelerator = SimpleNamespace(device=torch.device("cpu"), mixed_precision="bf16", num_processes=1)
    with runtime.tf32(True):  # asked for, but TF32 does not exist on the CPU
        described = runtime.describe(accelerator)
    assert described == {"mixed_precision": "bf16", "allow_tf32": False, "device": "cpu", "world_size": 1}


def _submitit_local_task(monkeypatch, rank: int, tasks: int = 2) -> None:
    for key in (*runtime.DISTRIBUTED_KEYS, "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.setenv(key, "")  # remembered as it was, so that what export sets is undone after the test
        monkeypatch.delenv(key)
    env = {
        "SUBMITIT_EXECUTOR": "local",
        "SUBMITIT_LOCAL_JOB_ID": "4242",
        "SUBMITIT_LOCAL_NTASKS": str(tasks),
        "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
        "SUBMITIT_LOCAL_NODEID": "0",
        "SUBMITIT_LOCAL_GLOBALID": str(rank),
        "SUBMITIT_LOCAL_LOCALID": str(rank),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_a_multi_task_submitit_job_exports_the_torch_distributed_environment(monkeypatch):
    _submitit_local_task(monkeypatch, rank=1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    runtime.export_distributed_env()
    exported = {key: os.environ[key] for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR")}
    assert exported == {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": socket.gethostname()}
    assert 20000 <= int(os.environ["MASTER_PORT"]) <= 60000  # the same on every task: seeded by the job id
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"  # Accelerate picks cuda:LOCAL_RANK among the node's GPUs


def test_a_one_task_job_and_a_torchrun_process_are_left_alone(monkeypatch):
    _submitit_local_task(monkeypatch, rank=0, tasks=1)
    runtime.export_distributed_env()
    assert "RANK" not in os.environ
    _submitit_local_task(monkeypatch, rank=0)
    monkeypatch.setenv("RANK", "3")
    runtime.export_distributed_env()
    assert os.environ["RANK"] == "3" and "WORLD_SIZE" not in os.environ


def test_a_half_set_distributed_environment_is_refused(monkeypatch):
    _submitit_local_task(monkeypatch, rank=0)
    monkeypatch.setenv("MASTER_ADDR", "elsewhere")
    with pytest.raises(UserError, match=r"MASTER_ADDR set without RANK"):
        runtime.export_distributed_env()


def _parts(**extra):
    weight = nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    return {
        "trainable": {"w": weight.detach()},
        "optimizer_state": optimizer.state_dict(),
        "scheduler_state": {},
        "router_state": Router(0).state_dict(),
        "progress": {"global_step": 3},
        **extra,
    }


def test_each_rank_gets_its_own_rng_state_and_the_grad_scaler_comes_back(tmp_path):
    torch.manual_seed(1)
    rank0 = ckpt.rng_state()
    torch.manual_seed(2)
    rank1 = ckpt.rng_state()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale(torch.ones(()))  # fp16 overflow steps had lowered the scale: 1024 -> 256
    scaler.update(new_scale=256.0)
    ckpt.save_checkpoint(tmp_path / "c", **_parts(rng_per_rank=[rank0, rank1], scaler_state=scaler.state_dict()))
    loaded = ckpt.load_checkpoint(tmp_path / "c")
    assert torch.equal(loaded.rng_of_rank(1)["torch"], rank1["torch"])
    assert torch.equal(loaded.rng_of_rank(0)["torch"], rank0["torch"])
    assert not torch.equal(rank0["torch"], rank1["torch"])
    fresh = torch.amp.GradScaler("cpu")
    fresh.load_state_dict(loaded.scaler_state)
    assert fresh.get_scale() == 256.0


def test_a_checkpoint_from_before_per_rank_states_gives_every_rank_rank_zeros(tmp_path):
    ckpt.save_checkpoint(tmp_path / "c", **_parts())
    loaded = ckpt.load_checkpoint(tmp_path / "c")
    loaded.rng_per_rank = None
    assert loaded.rng_of_rank(1) is loaded.rng
    assert loaded.scaler_state is None


def test_resuming_with_another_number_of_processes_is_refused(tmp_path):
    accelerator = SimpleNamespace(num_processes=2)
    with pytest.raises(UserError, match=r"written by 1 processes and this run has 2.*Resume with 1 processes"):
        ckpt._same_on_every_rank(3, 1, accelerator, tmp_path)


def test_gradient_checkpointing_with_a_routed_mixture_is_refused():
    model = nn.Sequential(ExpertLinear(4, 4, num_experts=2, router=Router(0)))
    model.is_activation_checkpointing = True
    with pytest.raises(UserError, match=r"gradient checkpointing is on .* route to other experts"):
        loop._refuse_gradient_checkpointing(model)
    model.is_activation_checkpointing = False
    loop._refuse_gradient_checkpointing(model)


def test_training_batches_are_pinned_on_cuda_only():
    loader = torch.utils.data.DataLoader(list(range(4)))
    loop._pin_on_cuda(loader, torch.device("cpu"))
    assert loader.pin_memory is False
    loop._pin_on_cuda(loader, torch.device("cuda", 0))
    assert loader.pin_memory is True
