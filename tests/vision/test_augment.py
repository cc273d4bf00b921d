import pytest
import torch

from dltool.vision.augment import OPS, augment, parse_ops


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_ops_keep_shape_and_range_and_change_pixels(op, channels):
    torch.manual_seed(0)
    x = torch.rand(16, channels, 12, 12)
    y = augment(x, (op,))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 + 1e-6
    if not (op == "saturation" and channels == 1):  # grayscale has no saturation to change
        assert not torch.equal(x, y)


def test_unknown_op():
    from dltool.core.errors import OptionError

    with pytest.raises(OptionError, match="did you mean 'flip'"):
        parse_ops("flop")
