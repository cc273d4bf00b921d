import pytest
import torch

from dltool.vision.augment import AUGMENTS, OPS, apply, augment, ops_for, parse_ops


@pytest.mark.parametrize("op", ops_for("class"))
@pytest.mark.parametrize("channels", [1, 3])
def test_ops_keep_shape_and_range_and_change_pixels(op, channels):
    torch.manual_seed(0)
    x = torch.rand(16, channels, 12, 12)
    y = augment(x, (op,))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 + 1e-6
    if not (op == "saturation" and channels == 1):  # grayscale has no saturation to change
        assert not torch.equal(x, y)


def test_every_op_serves_a_task_and_colour_ops_keep_every_label():
    assert set(OPS) == set(ops_for("class")) | set(ops_for("mask")) | set(ops_for("boxes"))
    for op in OPS:
        if not AUGMENTS.get(op).meta["geometric"]:
            assert op in ops_for("class") and op in ops_for("mask") and op in ops_for("boxes")


def test_unknown_op():
    from dltool.core.errors import OptionError

    with pytest.raises(OptionError, match="did you mean 'flip'"):
        parse_ops("flop")


@pytest.mark.parametrize("spec, labels, refused", [
    ("flip,crop", "boxes", "crop"), ("scale", "mask", "scale"), ("mosaic", "mask", "mosaic"),
    ("flip,mosaic", "class", "mosaic"),
])
def test_an_op_that_cannot_carry_the_labels_is_refused_by_name(spec, labels, refused):
    from dltool.core.errors import OptionError

    with pytest.raises(OptionError, match=f"--augment {refused} cannot keep") as e:
        parse_ops(spec, labels)
    assert refused not in e.value.hint.split(": ", 1)[1].split(", ")  # the hint lists only ops that can
    with pytest.raises(OptionError):  # and apply, given those labels, refuses it too
        x = torch.rand(2, 3, 8, 8)
        apply(x, (refused,), **{"class": {}, "mask": {"mask": torch.zeros(2, 8, 8)},
                                 "boxes": {"boxes": torch.zeros(2, 1, 5)}}[labels])


def test_parse_keeps_the_order_and_skips_blanks():
    assert parse_ops(" flip, ,colour,mosaic ", "boxes") == ("flip", "colour", "mosaic")
    assert parse_ops("", "mask") == parse_ops(None) == ()


@pytest.mark.parametrize("task, labels", [("classify", "class"), ("segment", "mask"), ("detect", "boxes")])
def test_augment_help_lists_every_op_the_task_takes(task, labels):
    """The help cannot import torch to ask the registry, so it names the ops itself: it must name them all."""
    import re

    from dltool.vision.augment import ops_for
    from tests.conftest import command_tree

    train = command_tree().get_command(None, "vision").get_command(None, task).get_command(None, "train")
    text = next(p.help for p in train.params if p.name == "augment")
    assert set(re.findall(r"[a-z0-9]+", text.split(":", 1)[-1].split(";", 1)[-1])) >= set(ops_for(labels)), text
