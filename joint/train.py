"""One training loop for every phase (warm-up, search, fine-tune): early stopping, checkpoints, timing, progress."""
from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .cost import regularizer
from .data.tensors import TensorData
from .quant import compile_mode, compile_whole
from .search import SAMPLINGS, SearchableNet

SELECTIONS = ("accuracy", "loss")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("exp", "step", "milestones", "cosine")
# A checkpoint costs about as much as a small model's epoch (20 ms on the quick profile): write one after the first
# epoch that ends this long after the last, so a killed phase loses at most about this much training.
CHECKPOINT_SECONDS = 30.0
# settings added after records were made: left out of a PhaseConfig's repr (a profile's fingerprint) at their default
LATER_SETTINGS = ("sampling", "compensate")


@dataclass(frozen=True, repr=False)
class PhaseConfig:
    """Hyper-parameters of one phase; the defaults are the paper's CIFAR-10 settings."""

    epochs: int
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adam"  # of the weights: "adam", or "sgd" with `momentum`
    momentum: float = 0.0
    schedule: str = "exp"  # per-epoch learning-rate factor, applied to every optimiser of the phase (see lr_factor)
    lr_decay: float = 0.99  # "exp": lr_decay^epoch (LambdaLR 0.99^epoch)
    step_size: int = 7  # "step": gamma^(epoch // step_size) (StepLR)
    gamma: float = 0.1
    milestones: tuple[tuple[int, float], ...] = ()  # "milestones": divide by d once epoch index m has finished
    patience: int = 50  # epochs without improvement before stopping early
    min_epochs: int = 22  # selection and early stopping start after this many epochs (the scripts: index > 20)
    arch_lr: float = 1e-2  # architecture parameters (search phase only): precision logits or PIT masks
    arch_momentum: float = 0.9
    arch_optimizer: str = "sgd"  # "sgd" with momentum (the joint search), "adam" (PIT's masks)
    temperature_decay: float = 0.045  # T = exp(-decay * epoch) during the search
    lam_ramp: bool = False  # lambda from 1 % to 100 % over the first half of the search
    selection: str = "accuracy"  # best validation accuracy, or lowest validation loss (+ lambda * cost)
    sampling: str = "softmax"  # the search's forward: soft mixture, Gumbel draw, or the argmax network ("hard", STE)
    compensate: bool = False  # divide each channel's weight and bias by 1 - theta_0 when the search starts

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}; got {self.sampling!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}; got {self.selection!r}")
        if self.arch_optimizer not in OPTIMIZERS:
            raise ValueError(f"arch_optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.arch_optimizer!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"epochs must be an integer >= 1; got {self.epochs!r}")

    def __repr__(self) -> str:
        """The dataclass repr, less the later settings at their defaults: older records keep their keys."""
        shown = [f for f in fields(self) if f.name not in LATER_SETTINGS or getattr(self, f.name) != f.default]
        return f"PhaseConfig({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"


@dataclass(frozen=True)
class Penalty:
    """What the search adds to the task loss: lam * cost(name) / reference (reference: the all-8-bit cost)."""

    lam: float
    cost: str
    reference: float

    def __call__(self, net: nn.Module, lam: float) -> torch.Tensor:
        return regularizer(net.cost(self.cost) / self.reference, lam)


@dataclass
class PhaseResult:
    """How a phase went: epochs run, wall-clock seconds, and the best validation metrics."""

    epochs: int
    seconds: float
    best_epoch: int
    val_accuracy: float
    val_loss: float
    curve: list[dict]  # per epoch: validation accuracy and loss (and, in a search, the raw cost)


def lr_factor(config: PhaseConfig, epoch: int) -> float:
    """Learning-rate multiplier after `epoch` finished epochs, for the schedules of the paper's scripts."""
    if config.schedule == "exp":
        return config.lr_decay**epoch
    if config.schedule == "step":
        return config.gamma ** (epoch // config.step_size)
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(epoch, config.epochs) / config.epochs))
    factor = 1.0
    for milestone, divisor in config.milestones:
        if epoch > milestone:  # the scripts adjust after epoch index m, so index m + 1 is the first at the new rate
            factor /= divisor
    return factor


def _ramp_epochs(epochs: int) -> int:
    """How many epochs the lambda ramp lasts: the first half of the phase."""
    return max(epochs // 2, 1)


def ramped_lambda(lam: float, epoch: int, epochs: int) -> float:
    """Linear ramp from lam/100 to lam over the first half of the epochs (the paper scripts' option)."""
    return min(lam / 100 + epoch * 0.99 * lam / _ramp_epochs(epochs), lam)


def training_forward(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward a training step calls: in compile mode "net", the network compiled whole (its cost too)."""
    if compile_mode() != "net":
        return model
    if isinstance(model, SearchableNet):
        model.compile_cost()
    return compile_whole(model)


def full_lambda_epoch(epochs: int) -> int:
    """The first epoch (counted from 1) that a ramped search trains at its full lambda: a ramped search selects from
    there on, since an earlier, less regularised epoch answers a smaller lambda than the run's."""
    return min(_ramp_epochs(epochs) + 1, epochs)


def pick_device(name: str = "auto") -> torch.device:
    """CUDA when present (with the deterministic settings of the paper's seeding), else the CPU; or `name`."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:<index>; got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available here; use --device cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:<index>; got {name!r}")
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":16:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)
    return device


def batches(data: Dataset, batch_size: int, device: torch.device, workers: int = 0, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over `data` in batches: straight from memory for a TensorData, else through a DataLoader (the same
    order for the same generator state)."""
    if isinstance(data, TensorData):
        return data.batches(batch_size, generator, shuffle)
    return DataLoader(data, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda",
                      persistent_workers=False, shuffle=shuffle, generator=generator)


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, batch_size: int = 256, class_weights: torch.Tensor | None = None,
             device: torch.device | str = "cpu", workers: int = 0) -> tuple[float, float]:
    """Accuracy and cross-entropy of `model` in eval mode (the argmax architecture for a SearchableNet), computed
    on `device`; the model goes back to where it was. With class weights the loss is the weighted mean that
    cross_entropy(weight=...) minimises in training: sum of w_y * CE over sum of w_y."""
    device = torch.device(device)
    home = next(model.parameters()).device
    model.to(device).eval()
    weights = None if class_weights is None else class_weights.to(device)
    correct = loss = total_weight = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for x, y in batches(data, batch_size, device, workers):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        loss = loss + F.cross_entropy(out, y, weight=weights, reduction="sum")
        total_weight = total_weight + (len(y) if weights is None else weights[y].sum())
        correct = correct + (out.argmax(1) == y).sum()
        count += len(y)
    model.to(home)
    return correct.item() / count, (loss / total_weight).item()


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weights decay; PACT clips do not; precision logits are left out (their own optimiser)."""
    arch = {id(p) for p in model.arch_parameters()} if hasattr(model, "arch_parameters") else set()
    decay, clips = [], []
    for name, p in model.named_parameters():
        if id(p) in arch or not p.requires_grad:
            continue
        (clips if name.endswith(".clip") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": clips, "weight_decay": 0.0}]


def train_phase(model: nn.Module, config: PhaseConfig, train: Dataset, val: Dataset, *, batch_size: int,
                seed: int, penalty: Penalty | None = None, class_weights: torch.Tensor | None = None,
                checkpoint: Path | None = None, desc: str = "train", progress: bool = True,
                device: torch.device | str = "cpu", workers: int = 0, channels_last: bool = False,
                checkpoint_seconds: float = CHECKPOINT_SECONDS) -> PhaseResult:
    """Train `model` for one phase and restore its best-validation state; the model is back on the CPU after.

    With a `penalty` the architecture parameters (precision logits, PIT masks) are trained too; `checkpoint`
    (a file, written after the first epoch that ends `checkpoint_seconds` after the last write, and at the end)
    makes the phase resumable from that epoch, with the same result as an uninterrupted run.
    `channels_last` trains in that memory format (faster convolutions on CPUs); the model is returned contiguous.
    """
    device = torch.device(device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=layout)
    weights = None if class_weights is None else class_weights.to(device)
    search = penalty is not None
    groups = _param_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, foreach=True)
    else:
        opt = torch.optim.Adam(groups, lr=config.lr, foreach=True)
    optimizers = [opt]
    if search and config.arch_optimizer == "sgd":
        optimizers.append(torch.optim.SGD(model.arch_parameters(), lr=config.arch_lr, momentum=config.arch_momentum,
                                          foreach=True))
    elif search:
        optimizers.append(torch.optim.Adam(model.arch_parameters(), lr=config.arch_lr, foreach=True))
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lambda e: lr_factor(config, e)) for o in optimizers]
    state = {"epoch": 0, "best": None, "best_metric": -math.inf, "best_epoch": 0, "best_val": (0.0, math.inf),
             "bad_epochs": 0, "seconds": 0.0, "done": False, "curve": []}
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False, map_location=device)
        model.load_state_dict(saved["model"])
        for o, s in zip(optimizers, saved["optimizers"]):
            o.load_state_dict(s)
        for sch, s in zip(schedulers, saved["schedulers"]):
            sch.load_state_dict(s)
        state = {"curve": [], **saved["state"]}
    step_model = training_forward(model)
    first_eligible = min(config.min_epochs, config.epochs)
    if search and config.lam_ramp:
        first_eligible = max(first_eligible, full_lambda_epoch(config.epochs))
    shuffle = torch.Generator()
    bar = tqdm(total=config.epochs, initial=state["epoch"], desc=desc, disable=not progress, leave=False)
    epoch = state["epoch"]
    saved_at = time.perf_counter()
    while not state["done"]:
        started = time.perf_counter()
        torch.manual_seed(seed * 100_003 + epoch)
        shuffle.manual_seed(seed * 100_019 + epoch)
        lam = 0.0
        if search:
            if isinstance(model, SearchableNet):
                model.set_sampling(config.sampling)
                model.set_temperature(math.exp(-config.temperature_decay * epoch))
            lam = ramped_lambda(penalty.lam, epoch, config.epochs) if config.lam_ramp else penalty.lam
        model.train()
        for x, y in batches(train, batch_size, device, workers, shuffle=True, generator=shuffle):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=layout)
            # net mode: the epoch's last, smaller batch runs uncompiled rather than compiling the network again
            forward = step_model if len(x) == batch_size else model
            loss = F.cross_entropy(forward(x), y, weight=weights)
            if search:
                loss = loss + penalty(model, lam)
            for o in optimizers:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in optimizers:
                o.step()
        for sch in schedulers:
            sch.step()
        val_acc, val_loss = evaluate(model, val, class_weights=class_weights, device=device, workers=workers)
        cost = None
        if search:
            with torch.no_grad():
                cost = model.cost(penalty.cost).item()
            val_loss += lam * cost / penalty.reference
        epoch += 1
        metric = val_acc if config.selection == "accuracy" else -val_loss
        eligible = epoch >= first_eligible
        if eligible and metric > state["best_metric"]:
            state.update(best=copy.deepcopy(model.state_dict()), best_metric=metric, best_epoch=epoch,
                         best_val=(val_acc, val_loss), bad_epochs=0)
        elif eligible:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["seconds"] += time.perf_counter() - started
        state["curve"].append({"val_accuracy": val_acc, "val_loss": val_loss, **({"cost": cost} if search else {})})
        early = epoch >= config.min_epochs and state["bad_epochs"] >= config.patience
        state["done"] = early or epoch >= config.epochs
        if checkpoint is not None and (state["done"] or time.perf_counter() - saved_at >= checkpoint_seconds):
            saved_at = time.perf_counter()
            _atomic_save({"model": model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
                          "schedulers": [s.state_dict() for s in schedulers], "state": state}, checkpoint)
        bar.update(1)
        bar.set_postfix(loss=f"{val_loss:.3f}", acc=f"{val_acc:.3f}", **({"cost": f"{cost:.4g}"} if search else {}))
    bar.close()
    if state["best"] is None:
        raise RuntimeError(f"{desc}: no epoch gave a finite validation {config.selection}; lower the learning rate")
    model.load_state_dict(state["best"])
    model.to("cpu", memory_format=torch.contiguous_format)
    return PhaseResult(epoch, state["seconds"], state["best_epoch"], *state["best_val"], state["curve"])
