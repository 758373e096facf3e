"""U-Net generator and PatchGAN: reference configuration, equivalence to the reference blocks."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from pybokeh.nets import PatchDiscriminator, UNetGenerator, levels_for_size  # noqa: E402
from pybokeh.nets.patchgan import receptive_field  # noqa: E402


# --------------------------------------------------------------- reference (Isola et al. code), re-typed
class RefUnetBlock(nn.Module):
    """The reference UnetSkipConnectionBlock with norm_layer = InstanceNorm2d(affine=False)."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 use_dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        self.downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=True)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        downnorm, upnorm = nn.InstanceNorm2d(inner_nc), nn.InstanceNorm2d(outer_nc)
        if outermost:
            self.upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1)
            model = [self.downconv, submodule, uprelu, self.upconv, nn.Tanh()]
        elif innermost:
            self.upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=True)
            model = [downrelu, self.downconv, uprelu, self.upconv, upnorm]
        else:
            self.upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=True)
            model = [downrelu, self.downconv, downnorm, submodule, uprelu, self.upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)
        self.sub = submodule

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)  # x was rewritten by the in-place LeakyReLU


def ref_unet(num_downs, ngf, input_nc=3, output_nc=1):
    block = RefUnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = RefUnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=True)
    block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block)
    block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block)
    block = RefUnetBlock(ngf, ngf * 2, submodule=block)
    return RefUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)


def copy_into_ref(ours: UNetGenerator, ref: RefUnetBlock) -> None:
    blocks, b = [], ref
    while b is not None:
        blocks.append(b)
        b = b.sub
    assert len(blocks) == len(ours.encoder)
    for level, blk in enumerate(blocks):  # level 0 = outermost
        blk.downconv.load_state_dict(ours.encoder[level].conv.state_dict())
        blk.upconv.load_state_dict(ours.decoder[len(blocks) - 1 - level].convt.state_dict())


def ref_discriminator(input_nc=4, ndf=64, n_layers=3):
    seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=True), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=True), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*seq)


# --------------------------------------------------------------- tests
def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_reference_generator_parameter_count_and_shape():
    g = UNetGenerator()  # unet_256 defaults
    # Hand count: encoder convs (k=4) 3→64→128→256→512→512×4, decoder convT mirror with doubled inputs.
    def conv(ci, co):
        return ci * co * 16 + co
    enc = conv(3, 64) + conv(64, 128) + conv(128, 256) + conv(256, 512) + 4 * conv(512, 512)
    dec = conv(512, 512) + 3 * conv(1024, 512) + conv(1024, 256) + conv(512, 128) + conv(256, 64) + conv(128, 1)
    assert _count(g) == enc + dec == 54_405_505
    assert [b.conv.out_channels for b in g.encoder] == [64, 128, 256, 512, 512, 512, 512, 512]
    # Norm on encoder levels 2..7 only; dropout on the three decoder blocks outside the innermost.
    assert [b.norm_act is not None for b in g.encoder] == [False] + [True] * 6 + [False]
    assert [b.dropout is not None for b in g.decoder] == [False, True, True, True, False, False, False, False]
    with torch.no_grad():
        y = g.eval()(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 1, 256, 256)
    assert y.abs().max() <= 1.0 and y.std() > 0


def test_reference_discriminator_shape_and_count():
    d = PatchDiscriminator()
    assert _count(d) == _count(ref_discriminator()) == 2_765_761
    with torch.no_grad():
        out = d(torch.randn(2, 3, 256, 256), torch.randn(2, 1, 256, 256))
    assert out.shape == (2, 1, 30, 30)


@pytest.mark.parametrize("num_downs,size", [(8, 256), (7, 128)])
def test_generator_equals_reference_blocks(num_downs, size):
    torch.manual_seed(0)
    ours = UNetGenerator(ngf=4, levels=num_downs)
    ref = ref_unet(num_downs, ngf=4)
    copy_into_ref(ours, ref)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ours.eval(), ref.eval()
        torch.testing.assert_close(ours(x), ref(x.clone()), rtol=1e-5, atol=1e-5)
        # Train mode: same dropout masks when the RNG is in the same state -> same placement and order.
        ours.train(), ref.train()
        torch.manual_seed(7)
        a = ours(x)
        torch.manual_seed(7)
        b = ref(x.clone())
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        torch.manual_seed(8)
        assert not torch.allclose(ours(x), a)  # dropout really is active in training


def test_discriminator_equals_reference():
    torch.manual_seed(0)
    ours, ref = PatchDiscriminator(ndf=8), ref_discriminator(ndf=8)
    convs = [m for m in ours.modules() if isinstance(m, nn.Conv2d)]
    ref_convs = [m for m in ref.modules() if isinstance(m, nn.Conv2d)]
    for a, b in zip(convs, ref_convs, strict=True):
        b.load_state_dict(a.state_dict())
    p, d = torch.randn(2, 3, 64, 64), torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(p, d), ref(torch.cat([p, d], 1)), rtol=1e-5, atol=1e-5)


def test_discriminator_receptive_field_is_70px():
    assert receptive_field(3) == 70
    torch.manual_seed(0)
    d = PatchDiscriminator(norm="none")  # instance norm would couple all pixels via its statistics
    with torch.no_grad():
        for m in d.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()  # no accidental cancellation: every tap contributes
    x = torch.rand(1, 3, 256, 256, requires_grad=True)
    y = torch.rand(1, 1, 256, 256, requires_grad=True)
    out = d(x, y)
    assert out.shape[-2:] == (30, 30)
    for i, j in [(15, 15), (10, 20)]:
        gx, gy = torch.autograd.grad(out[0, 0, i, j], [x, y], retain_graph=True)
        support = (gx.abs().sum(1)[0] + gy.abs()[0, 0]) > 0
        rows = support.any(1).nonzero().flatten()
        cols = support.any(0).nonzero().flatten()
        assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70
        assert support.sum() == 70 * 70  # dense, and the photo and depth channels both feed it
        assert rows.min() == 8 * i - 23 and cols.min() == 8 * j - 23  # padding 1 at jumps 1+2+4+8+8


def test_weight_init_is_normal_0_002():
    torch.manual_seed(0)
    g = UNetGenerator(ngf=16, levels=6)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    b = torch.cat([m.bias.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 5e-4
    assert torch.count_nonzero(b) == 0


def test_levels_follow_size_and_bad_sizes_are_rejected():
    assert [levels_for_size(s) for s in (256, 128, 192, 160, 512)] == [8, 7, 6, 5, 8]
    for bad in (100, 0, -32, 48):
        with pytest.raises(ValueError, match="size"):
            levels_for_size(bad)
    g = UNetGenerator(ngf=2, levels=5)
    with pytest.raises(ValueError, match="multiples of 2\\*\\*levels = 32"):
        g(torch.zeros(1, 3, 48, 40))
    with pytest.raises(ValueError, match="levels"):
        UNetGenerator(levels=1)
    with pytest.raises(ValueError, match="input_size"):
        UNetGenerator(ngf=2, levels=5, input_size=48)


def test_small_configs_run_at_non_square_multiples():
    g = UNetGenerator(ngf=8, levels=6).eval()  # size 192 config (3x3 bottleneck)
    with torch.no_grad():
        assert g(torch.randn(1, 3, 192, 128)).shape == (1, 1, 192, 128)
