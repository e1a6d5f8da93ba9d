import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import joint
from joint import train
from joint.data.tensors import TensorData
from joint.train import Penalty, PhaseConfig, full_lambda_epoch, ramped_lambda, train_phase


def tiny_data(n=96):
    bench = joint.data.load("digits")
    x, y = bench.train.inputs, bench.train.labels
    return TensorDataset(x[:n], y[:n]), TensorDataset(x[n:2 * n], y[n:2 * n])


def test_lambda_ramp_from_one_percent_to_full_over_half_the_epochs():
    assert [round(ramped_lambda(1.0, e, 10), 3) for e in (0, 2, 4, 5, 9)] == [0.01, 0.406, 0.802, 1.0, 1.0]


def test_interrupted_phase_resumes_to_the_same_state(tmp_path, monkeypatch):
    data = tiny_data()
    config = PhaseConfig(4, min_epochs=1, patience=10)

    def fresh():
        torch.manual_seed(0)
        return joint.models.resnet8_digits()

    reference = fresh()
    train_phase(reference, config, *data, batch_size=32, seed=3, progress=False)

    calls = {"n": 0}
    real_evaluate = train.evaluate

    def crash_on_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", crash_on_third_epoch)
    model = fresh()
    with pytest.raises(KeyboardInterrupt):
        train_phase(model, config, *data, batch_size=32, seed=3, checkpoint=tmp_path / "c.pt", progress=False,
                    checkpoint_seconds=0)
    assert torch.load(tmp_path / "c.pt", weights_only=False)["state"]["epoch"] == 2
    monkeypatch.setattr(train, "evaluate", real_evaluate)
    model = fresh()
    result = train_phase(model, config, *data, batch_size=32, seed=3, checkpoint=tmp_path / "c.pt", progress=False)
    assert result.epochs == 4
    for (name, a), b in zip(reference.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_phase_writes_its_checkpoint_after_the_interval_and_at_its_end(tmp_path, monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(train.time, "perf_counter", lambda: clock["now"])
    real_evaluate, saved = train.evaluate, []

    def five_seconds_an_epoch(*args, **kwargs):
        clock["now"] += 5.0
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", five_seconds_an_epoch)
    monkeypatch.setattr(train, "_atomic_save", lambda obj, path: saved.append(obj["state"]["epoch"]))
    train_phase(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), PhaseConfig(7, min_epochs=1),
                *tiny_data(), batch_size=32, seed=0, checkpoint=tmp_path / "c.pt", progress=False,
                checkpoint_seconds=12.0)
    assert saved == [3, 6, 7]


def test_early_stopping_after_patience_and_best_state_restored():
    data = tiny_data()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))  # lr 0: the metric never improves
    result = train_phase(model, PhaseConfig(10, lr=0.0, weight_decay=0.0, min_epochs=2, patience=2), *data,
                         batch_size=32, seed=0, progress=False)
    assert (result.epochs, result.best_epoch) == (4, 2)


def test_a_ramped_search_selects_only_among_its_epochs_at_full_lambda(monkeypatch):
    for epochs in range(2, 12):
        first = full_lambda_epoch(epochs)  # counted from 1; ramped_lambda counts from 0
        assert ramped_lambda(3.0, first - 1, epochs) == pytest.approx(3.0)
        assert ramped_lambda(3.0, first - 2, epochs) < 2.9
    data = tiny_data()
    for ramp, kept in ((False, 1), (True, 3)):
        epochs_seen = []

        def worse_every_epoch(*args, **kwargs):  # the first epoch validates best
            epochs_seen.append(1)
            return 1.0 - 0.1 * len(epochs_seen), 0.0

        monkeypatch.setattr(train, "evaluate", worse_every_epoch)
        torch.manual_seed(0)
        net = joint.searchable(joint.models.resnet8_digits(), joint.SearchSpace(), data[0].tensors[0][:32])
        config = PhaseConfig(4, arch_lr=0.5, min_epochs=1, patience=4, temperature_decay=0.5, lam_ramp=ramp)
        result = train_phase(net, config, *data, batch_size=32, seed=0, penalty=Penalty(5.0, "size", 616_576.0),
                             progress=False)
        assert result.best_epoch == kept and full_lambda_epoch(4) == 3


def test_search_phase_moves_the_logits_and_anneals_the_temperature():
    data = tiny_data()
    torch.manual_seed(0)
    net = joint.searchable(joint.models.resnet8_digits(), joint.SearchSpace(), data[0].tensors[0][:32])
    net.train().set_temperature(math.exp(-0.5 * 2))
    soft_before = net.cost("size").item()
    config = PhaseConfig(3, arch_lr=0.5, min_epochs=1, temperature_decay=0.5)
    train_phase(net, config, *data, batch_size=32, seed=0, penalty=Penalty(5.0, "size", 616_576.0), progress=False)
    assert net.temperature == pytest.approx(math.exp(-0.5 * 2))
    assert net.train().cost("size").item() < 0.95 * soft_before


def test_bad_phase_config():
    with pytest.raises(ValueError, match="selection must be one of accuracy, loss; got 'f1'"):
        PhaseConfig(3, selection="f1")
    with pytest.raises(ValueError, match="epochs must be an integer >= 1; got 0"):
        PhaseConfig(0)


def test_later_settings_stay_out_of_the_repr_at_their_defaults_so_older_records_keep_their_keys():
    assert "sampling" not in repr(PhaseConfig(8)) and "compensate" not in repr(PhaseConfig(8))
    assert repr(PhaseConfig(8)).startswith("PhaseConfig(epochs=8, lr=0.001, weight_decay=0.0001, optimizer='adam'")
    assert repr(PhaseConfig(8, sampling="hard", compensate=True)).endswith(
        "selection='accuracy', sampling='hard', compensate=True)")
    with pytest.raises(ValueError, match="sampling must be one of softmax, gumbel, hard; got 'argmax'"):
        PhaseConfig(8, sampling="argmax")


@pytest.mark.parametrize("sampling", ["softmax", "hard"])
def test_a_hard_search_trains_the_argmax_network_that_validation_measures(sampling):
    data = tiny_data()
    torch.manual_seed(0)
    net = joint.searchable(joint.models.resnet8_digits(), joint.SearchSpace(), data[0].tensors[0][:32])
    config = PhaseConfig(1, arch_lr=0.5, min_epochs=1, sampling=sampling)
    train_phase(net, config, *data, batch_size=32, seed=0, penalty=Penalty(5.0, "size", 616_576.0), progress=False)
    x = data[1].tensors[0][:16]
    trained, measured = net.train()(x), net.eval()(x)
    assert torch.equal(trained, measured) == (sampling == "hard")


def test_learning_rate_schedules_of_the_paper_scripts():
    exp = PhaseConfig(10)
    assert train.lr_factor(exp, 3) == pytest.approx(0.99**3)
    step = PhaseConfig(50, schedule="step", step_size=7, gamma=0.1)
    assert [train.lr_factor(step, e) for e in (0, 6, 7, 14)] == pytest.approx([1, 1, 0.1, 0.01])
    gsc = PhaseConfig(200, schedule="milestones", milestones=((50, 2.0), (100, 2.0), (150, 2.5)))
    # the scripts halve after epoch index 50 (and 100, divide by 2.5 after 150): index 51 is the first at half
    assert [train.lr_factor(gsc, e) for e in (50, 51, 101, 151, 199)] == pytest.approx([1, 0.5, 0.25, 0.1, 0.1])
    cosine = PhaseConfig(50, schedule="cosine")
    assert [train.lr_factor(cosine, e) for e in (0, 25, 50)] == pytest.approx([1, 0.5, 0])


@pytest.mark.parametrize("kwargs,message", [
    (dict(optimizer="rmsprop"), "optimizer must be one of adam, sgd; got 'rmsprop'"),
    (dict(schedule="linear"), "schedule must be one of exp, step, milestones, cosine; got 'linear'"),
])
def test_bad_phase_settings_are_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PhaseConfig(3, **kwargs)


def test_sgd_phase_with_a_step_schedule_trains_and_applies_its_learning_rates(tmp_path):
    data = tiny_data()
    torch.manual_seed(0)
    model = joint.models.resnet8_digits()
    config = PhaseConfig(3, lr=0.05, optimizer="sgd", momentum=0.9, schedule="step", step_size=2, gamma=0.1,
                         min_epochs=1, patience=5)
    result = train_phase(model, config, *data, batch_size=32, seed=0, checkpoint=tmp_path / "c.pt", progress=False)
    saved = torch.load(tmp_path / "c.pt", weights_only=False)
    (group, *_) = saved["optimizers"][0]["param_groups"]
    assert result.epochs == 3 and group["momentum"] == 0.9 and group["lr"] == pytest.approx(0.05 * 0.1)
    assert next(model.parameters()).device.type == "cpu"


def test_pick_device_falls_back_to_the_cpu_and_rejects_unknown_devices():
    assert train.pick_device("cpu").type == "cpu"
    assert train.pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:<index>; got 'gpu'"):
        train.pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here"):
            train.pick_device("cuda")


def test_in_memory_batches_give_the_same_training_for_the_same_seed():
    memory_data = tuple(TensorData(*d.tensors) for d in tiny_data())
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = joint.models.resnet8_digits()
        result = train_phase(model, PhaseConfig(2, min_epochs=1), *memory_data, batch_size=32, seed=5, progress=False)
        runs.append((model, result))
    (a, result_a), (b, result_b) = runs
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert result_a.curve == result_b.curve and len(result_a.curve) == 2


def test_every_epoch_is_on_the_curve_and_a_search_records_its_cost():
    data = tiny_data()
    torch.manual_seed(0)
    net = joint.searchable(joint.models.resnet8_digits(), joint.SearchSpace(), data[0].tensors[0][:32])
    result = train_phase(net, PhaseConfig(3, min_epochs=1), *data, batch_size=32, seed=0,
                         penalty=Penalty(1.0, "size", 616_576.0), progress=False)
    assert [set(point) for point in result.curve] == [{"val_accuracy", "val_loss", "cost"}] * 3
    assert result.val_accuracy == max(point["val_accuracy"] for point in result.curve)


def test_validation_loss_with_class_weights_is_the_weighted_mean_training_minimises():
    torch.manual_seed(0)
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    weights = torch.rand(10) * 20
    model = joint.models.resnet8_digits().eval()
    accuracy, loss = train.evaluate(model, TensorData(x, y), batch_size=16, class_weights=weights)
    with torch.no_grad():
        out = model(x)
    assert loss == pytest.approx(float(F.cross_entropy(out, y, weight=weights)), rel=1e-5)
    assert accuracy == pytest.approx(float((out.argmax(1) == y).double().mean()))


def test_channels_last_training_returns_a_contiguous_model_that_evaluates_alike():
    data = tiny_data()
    torch.manual_seed(0)
    model = joint.models.resnet8_digits()
    result = train_phase(model, PhaseConfig(2, min_epochs=1), *data, batch_size=32, seed=0, progress=False,
                         channels_last=True)
    assert all(p.is_contiguous() for p in model.parameters())
    assert train.evaluate(model, data[1])[0] == pytest.approx(result.curve[result.best_epoch - 1]["val_accuracy"])


HOST_READS = (("item", torch.Tensor.item), ("__float__", torch.Tensor.__float__), ("__bool__", torch.Tensor.__bool__))


@pytest.mark.parametrize("act_bits,cost", [((8,), "size"), ((2, 4, 8), "mpic"), ((8,), "ne16")])
@pytest.mark.parametrize("phase", ["search", "finetune"])
def test_a_training_step_reads_no_value_back_to_the_host(monkeypatch, act_bits, cost, phase):
    torch.manual_seed(0)
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace((0, 2, 4, 8), act_bits), x).train()
    if phase == "finetune":
        net.freeze()
    optimizers = [torch.optim.Adam(net.weight_parameters(), 1e-3)]
    if phase == "search":
        optimizers.append(torch.optim.SGD(net.arch_parameters(), 1e-2, momentum=0.9))
    penalty = Penalty(1.0, cost, 1e6)

    def step():
        loss = F.cross_entropy(net(x), y) + (penalty(net, 1.0) if phase == "search" else 0.0)
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in optimizers:
            o.step()

    step()  # the first step checks the cost model's inputs once
    reads = []
    for name, original in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _o=original, **k: (reads.append(self), _o(self))[1])
    step()
    monkeypatch.undo()
    counters = {id(o.state[p]["step"]) for o in optimizers for p in o.state if "step" in o.state[p]}
    assert [t for t in reads if id(t) not in counters] == []  # only the optimisers' host-side step counters


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: no GPU on this machine")
def test_a_training_step_on_cuda_never_synchronises():
    torch.manual_seed(0)
    device = torch.device("cuda")
    x, y = torch.rand(16, 3, 32, 32, device=device), torch.randint(0, 10, (16,), device=device)
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace((0, 2, 4, 8), (2, 4, 8)), x.cpu()).to(device)
    net.train()
    optimizers = [torch.optim.Adam(net.weight_parameters(), 1e-3),
                  torch.optim.SGD(net.arch_parameters(), 1e-2, momentum=0.9)]
    penalty = Penalty(1.0, "mpic", 1e6)

    def step():
        loss = F.cross_entropy(net(x), y) + penalty(net, 1.0)
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in optimizers:
            o.step()

    step()
    net.freeze()
    step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
        net.train()
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
