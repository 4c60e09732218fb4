"""Weight files: wrappers, DataParallel prefixes, and errors that say what does not fit."""

from __future__ import annotations

import pytest
import torch

from pngan.images import DataError
from pngan.models.dncnn import DnCNN
from pngan.models.vgg import VGG19Features
from pngan.models.weights import layout, load_weights, read_state_dict


def _tiny(seed: int, **kwargs) -> DnCNN:
    torch.manual_seed(seed)
    return DnCNN(depth=kwargs.pop("depth", 4), width=kwargs.pop("width", 8), **kwargs)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("wrapper", ["state_dict", "params", "model", None])
def test_round_trip_through_a_dataparallel_checkpoint(tmp_path, wrapper):
    source = _tiny(1)
    prefixed = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path / "ckpt.pth"
    torch.save({wrapper: prefixed, "epoch": 7} if wrapper else prefixed, path)
    target = _tiny(2)
    assert not _same_weights(source, target)
    assert load_weights(target, path) is target
    assert _same_weights(source, target)
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(source.eval()(x), target.eval()(x))


def test_loads_an_in_memory_state_dict():
    source, target = _tiny(1), _tiny(2)
    load_weights(target, {"state_dict": source.state_dict()})
    assert _same_weights(source, target)


def test_wrong_shape_file_names_the_file_and_the_mismatch(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save(_tiny(1, width=16).state_dict(), path)
    with pytest.raises(DataError) as err:
        load_weights(_tiny(2), path)
    message = str(err.value)
    assert message.startswith(f"{path}: weights do not fit DnCNN: shape mismatches (")
    assert "model.0.weight file [16, 3, 3, 3] vs model [8, 3, 3, 3]" in message
    assert "missing keys" not in message and "unexpected keys" not in message


def test_missing_and_unexpected_keys_are_counted_and_listed(tmp_path):
    path = tmp_path / "shallow.pth"
    state = dict(_tiny(1, depth=3).state_dict())  # conv, conv+BN, tail conv at index 5
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, path)
    with pytest.raises(DataError) as err:
        load_weights(_tiny(2, depth=4), path)  # depth 4: index 5 is an inner conv, BN at 6, tail at 8
    assert str(err.value) == (
        f"{path}: weights do not fit DnCNN: "
        "missing keys (7): model.6.weight, model.6.bias, model.6.running_mean, model.6.running_var, "
        "model.6.num_batches_tracked, ... (2 more); "
        "unexpected keys (1): extra.weight; "
        "shape mismatches (2): model.5.weight file [3, 8, 3, 3] vs model [8, 8, 3, 3], "
        "model.5.bias file [3] vs model [8]"
    )


def test_non_strict_skips_missing_and_unexpected_but_loads_the_rest():
    source = _tiny(1, batch_norm=False)
    partial = {k: v for k, v in source.state_dict().items() if k != "model.0.bias"}
    partial["extra.weight"] = torch.zeros(1)
    target = _tiny(2, batch_norm=False)
    before = target.model[0].bias.clone()
    load_weights(target, partial, strict=False)
    assert torch.equal(target.model[0].weight, source.model[0].weight)
    assert torch.equal(target.model[0].bias, before)
    with pytest.raises(DataError, match="shape mismatches"):
        load_weights(_tiny(3, width=16, batch_norm=False), partial, strict=False)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(DataError, match=f"^{path}: weights file not found$"):
        load_weights(_tiny(1), path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.pth"
    torch.save(_tiny(1).state_dict(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=f"^{path}: not a PyTorch file, or damaged"):
        read_state_dict(path)


def test_file_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "history.pth"
    torch.save({"epoch": 3, "lr": 1e-4}, path)
    with pytest.raises(DataError, match=r"not a state dict: 2 entries are not tensors \(epoch, lr\)"):
        read_state_dict(path)
    torch.save([1, 2], path)
    with pytest.raises(DataError, match="expected a state dict, found list"):
        read_state_dict(path)


def test_layout_lists_every_entry_with_its_shape():
    model = DnCNN(depth=3, width=8)
    assert layout(model) == {
        "model.0.weight": [8, 3, 3, 3], "model.0.bias": [8],
        "model.2.weight": [8, 8, 3, 3], "model.2.bias": [8],
        "model.3.weight": [8], "model.3.bias": [8], "model.3.running_mean": [8], "model.3.running_var": [8],
        "model.3.num_batches_tracked": [],
        "model.5.weight": [3, 8, 3, 3], "model.5.bias": [3],
    }


def test_vgg_from_file_takes_a_torchvision_file_and_ignores_the_classifier(tmp_path):
    source = VGG19Features()
    state = dict(source.state_dict())
    state["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision files carry the classifier too
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loaded = VGG19Features.from_file(path, layer="relu2_2")
    assert _same_weights(source, loaded)
    assert loaded.layer == "relu2_2" and not loaded.training


def test_vgg_from_file_errors(tmp_path):
    with pytest.raises(DataError, match="weights file not found"):
        VGG19Features.from_file(tmp_path / "missing.pth")
    path = tmp_path / "dncnn.pth"
    torch.save({"model.0.weight": torch.zeros(1)}, path)
    with pytest.raises(DataError, match=f"^{path}: no VGG19 'features.\\*' weights"):
        VGG19Features.from_file(path)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(DataError, match=f"^{path}: weights do not fit VGG19Features: missing keys \\(31\\)"):
        VGG19Features.from_file(path)
