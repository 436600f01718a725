"""Model library: shapes, gradients, re-parameterisation equality, N/k scaling, errors."""
from __future__ import annotations

import copy

import pytest
import torch

from meco_core import build_model, list_models, model_config_keys
from meco_core.evaluation.bench import count_flops, count_params
from meco_core.models.losses import MultiTaskLoss

TINY = dict(backbone="vit_tiny_patch16_224", channels=32, num_classes=5)
TRAINABLE = [m for m in list_models() if m != "mlore_reparam"]


def randomize_batchnorm(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics, so folding them into kernels is really exercised."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)


def make_batch(b: int = 2, h: int = 48, w: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=g)
    # Learnable targets: depth and class follow image brightness.
    brightness = image.mean(1, keepdim=True)
    depth = 2.0 + 20.0 * brightness
    seg = (brightness[:, 0] * 4.99).long()
    depth[:, :, :4] = 0  # a band without depth data
    return {"image": image, "depth": depth, "seg": seg,
            "has_depth": torch.ones(b, dtype=torch.bool), "has_seg": torch.ones(b, dtype=torch.bool)}


@pytest.mark.parametrize("name", list_models())
def test_output_shapes_any_input_size(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, **TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 70, 101))   # not a multiple of the patch size
    assert set(out) == set(model.tasks)
    if "depth" in out:
        assert out["depth"].shape == (1, 1, 70, 101)
        assert bool((out["depth"] > 0).all()) and bool((out["depth"] <= TINY.get("max_depth", 80.0)).all())
    if "segmentation" in out:
        assert out["segmentation"].shape == (1, 5, 70, 101)


@pytest.mark.parametrize("name", TRAINABLE)
def test_gradients_reach_backbone_decoder_and_heads(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, **TINY).train()
    batch = make_batch()
    out, aux = model(batch["image"], return_aux=True)
    loss, _ = MultiTaskLoss()(out, aux, batch)
    loss.backward()
    for part in ("backbone", "decoder", "heads"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part) and p.requires_grad]
        assert grads and any(g is not None and float(g.abs().sum()) > 0 for g in grads), part
    if name == "meco":
        stage = model.decoder.stages[0]
        assert float(stage.expert_codebooks.embed.grad.abs().sum()) > 0      # dictionary loss
        assert float(stage.router["depth"].predict.weight.grad.abs().sum()) > 0  # router through weights
        assert float(stage.router_temperature.grad.abs()) > 0


def test_mlore_reparameterisation_matches_training_form() -> None:
    torch.manual_seed(0)
    model = build_model("mlore", **TINY)
    randomize_batchnorm(model)
    model.eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = model(x)
        reparam = copy.deepcopy(model).prepare_for_inference()
        got = reparam(x)
    assert reparam.decoder.reparameterized
    for task in expected:
        assert (expected[task] - got[task]).abs().max().item() <= 1e-4, task
    # Training form evaluates all N experts; the inference form one 3x3 conv per task.
    assert count_flops(reparam, x[:1]) < count_flops(model, x[:1])
    with pytest.raises(RuntimeError, match="inference-only"):
        reparam.train()


def test_meco_params_grow_with_n_by_codebook_entries_and_flops_with_k_only() -> None:
    cfg = dict(TINY, codebook_size=16)
    small = build_model("meco", num_experts=5, top_k=3, **cfg)
    large = build_model("meco", num_experts=20, top_k=12, **cfg)
    stages = len(small.decoder.stages)
    assert count_params(large) - count_params(small) == (20 - 5) * 16 * cfg["channels"] * stages
    x = torch.rand(1, 3, 64, 64)
    f_small, f_large = count_flops(small.eval(), x), count_flops(large.eval(), x)
    assert f_large / f_small < 1.10
    same_k = build_model("meco", num_experts=20, top_k=3, **cfg).eval()
    assert count_flops(same_k, x) == pytest.approx(f_small, rel=1e-3)   # N alone costs no FLOPs


@pytest.mark.parametrize("update", ["dictionary", "ema"])
def test_codebooks_initialise_track_usage_and_restart_dead_codes(update: str) -> None:
    from meco_core.models.vq import Codebooks

    torch.manual_seed(0)
    books = Codebooks(3, 8, 4, update=update, restart_every=5).train()
    z = torch.randn(2, 50, 4)
    idx = torch.tensor([[0, 1], [0, 1]])
    w = torch.full((2, 2), 0.5)
    books(z, idx, w)
    assert bool(books.initialized)
    with torch.no_grad():
        books.embed.data[0, 0] = 1e3          # a codeword nobody will ever pick
        books.usage[0, 0] = 0.0
        if update == "ema":
            books.ema_sum[0, 0] = 1e3          # EMA recomputes codewords from its sums
    before = books.embed.data.clone()
    for _ in range(5):
        books(z, idx, w)
    assert int(books.restarts) >= 1
    assert float(books.embed.data[0, 0].abs().max()) < 1e2   # restarted near the data
    stats = books.stats()
    assert 1.0 <= stats["perplexity"] <= 8.0 and 0 < stats["live_fraction"] <= 1
    if update == "ema":
        assert not torch.equal(before[1], books.embed.data[1])     # EMA moved selected codebooks
        assert torch.equal(before[2], books.embed.data[2])         # unselected codebook untouched


def test_codebook_warmup_quantizes_only_after_n_passes_from_trained_features() -> None:
    torch.manual_seed(0)
    model = build_model("meco", codebook_warmup=2, **TINY).train()
    stage = model.decoder.stages[0]
    image = make_batch()["image"]
    for _ in range(2):
        _, aux = model(image, return_aux=True)
        assert float(aux["vq"]) == 0.0 and not bool(stage.expert_codebooks.initialized)
    _, aux = model(image, return_aux=True)
    assert float(aux["vq"].detach()) > 0 and bool(stage.expert_codebooks.initialized)
    assert all(bool(books.initialized) for books in stage.task_codebooks.values())


def test_z_residual_is_the_continuous_path_around_the_codebooks() -> None:
    """Same weights with and without the residual: the output block's input differs by exactly z."""
    torch.manual_seed(0)
    with_z = build_model("meco", **TINY).decoder.stages[0].eval()
    without_z = build_model("meco", z_residual=False, **TINY).decoder.stages[0].eval()
    without_z.load_state_dict(with_z.state_dict())
    captured = []
    for stage in (with_z, without_z):
        stage.out["depth"].register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    feature = torch.rand(1, with_z.fuse[0].in_channels, 3, 4)
    with torch.no_grad():
        with_z(feature), without_z(feature)
        z = with_z.extractor["depth"](with_z.fuse(feature))
    torch.testing.assert_close(captured[0] - captured[1], z, atol=1e-5, rtol=1e-5)


def test_soft_routing_uses_every_codebook() -> None:
    model = build_model("meco", routing="soft", **TINY).eval()
    stage = model.decoder.stages[0]
    routing = stage.route("depth", torch.rand(1, TINY["channels"], 4, 4))
    assert routing.indices.shape[1] == stage.expert_codebooks.num_codebooks
    assert float(routing.weights.sum()) == pytest.approx(1.0, abs=1e-5)


def test_config_errors_are_actionable() -> None:
    with pytest.raises(ValueError, match="available"):
        build_model("not_a_model")
    with pytest.raises(ValueError, match="valid keys"):
        build_model("meco", num_expert=3)
    with pytest.raises(ValueError, match="top_k"):
        build_model("meco", num_experts=3, top_k=5, **TINY)
    with pytest.raises(ValueError, match="fixes tasks"):
        build_model("single_depth", tasks=["segmentation"])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        build_model("plain", **TINY)(torch.rand(3, 32, 32))
    assert "num_experts" in model_config_keys("meco") and "codebook_update" in model_config_keys("meco")


@pytest.mark.parametrize("name", TRAINABLE)
def test_short_optimisation_lowers_the_loss(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, **TINY).train()
    batch = make_batch(b=4)
    criterion = MultiTaskLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(20):
        out, aux = model(batch["image"], return_aux=True)
        total, parts = criterion(out, aux, batch)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(parts.get("depth", 0) + parts.get("segmentation", 0))
    assert min(losses[-3:]) < 0.8 * losses[0], losses


def test_inference_fast_path_equals_reference_quantization() -> None:
    from meco_core.models.vq import Codebooks, quantize_mixture

    torch.manual_seed(0)
    experts, task = Codebooks(6, 16, 8), Codebooks(1, 16, 8)
    z = torch.randn(2, 30, 8)
    idx = torch.tensor([[0, 3, 5], [1, 2, 3]])
    w = torch.softmax(torch.randn(2, 3), dim=1)
    q, _ = experts.lookup(z, idx)
    qt, _ = task.lookup(z, torch.zeros(2, 1, dtype=torch.long))
    reference = torch.einsum("bk,bmkc->bmc", w, q) + qt[:, :, 0]
    fast = quantize_mixture(z.transpose(1, 2), [(experts.embed[idx], w),
                                                (task.embed[torch.zeros(2, 1, dtype=torch.long)], torch.ones(2, 1))])
    assert torch.allclose(fast.transpose(1, 2), reference, atol=1e-5)


def test_models_register_next_to_their_decoders() -> None:
    """Importing meco_core.models completes the registry; each name says what it fixes."""
    from meco_core.models import model_entry, register_model
    from meco_core.models.mlore import MLoReDecoder
    from meco_core.models.plain import PlainDecoder

    assert list_models() == ["meco", "mlore", "mlore_reparam", "plain", "single_depth", "single_segmentation",
                             "taskexpert"]
    assert model_entry("single_depth").decoder is PlainDecoder and model_entry("single_depth").fixed == {
        "tasks": ["depth"]}
    assert model_entry("mlore_reparam").decoder is MLoReDecoder and model_entry("mlore_reparam").inference_form
    assert not model_entry("mlore").inference_form
    with pytest.raises(ValueError, match="registered twice"):
        register_model("meco")(PlainDecoder)
    with pytest.raises(ValueError, match="unknown model 'nope'; available: meco, mlore"):
        build_model("nope")
    with pytest.raises(ValueError, match="fixes tasks"):
        build_model("single_depth", tasks=["segmentation"])


def test_stem_skip_feeds_the_hybrid_stem_to_every_head() -> None:
    """The stride-4 skip changes the heads' input (it is used) and keeps any input size working."""
    cfg = dict(backbone="vit_tiny_r_s16_p8_224", backbone_kwargs={"patch_size": 4}, channels=32, num_experts=3,
               top_k=2, codebook_size=16, task_codebook_size=16, head_upsample=1)
    model = build_model("meco", stem_skip=True, **cfg).eval()
    assert model.backbone.stem_channels == 64
    image = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        out = model(image)
        assert out["depth"].shape == (1, 1, 70, 90) and out["segmentation"].shape == (1, 5, 70, 90)
        features, stem = model.backbone(image)  # the skip is returned with the features, not kept
        assert stem.shape[:2] == (1, 64) and len(features) == len(model.backbone.taps)
        assert stem.shape[-2:] == tuple(n * model.backbone.stride // 4 for n in features[0].shape[-2:])  # stride 4
        assert not [k for k, v in vars(model.backbone).items() if isinstance(v, torch.Tensor)]
        base = model(image)["segmentation"]
        for head in model.heads.values():
            head.skip_proj[0].weight.mul_(2.0)
        assert not torch.allclose(model(image)["segmentation"], base)
    with pytest.raises(ValueError, match="hybrid ViT"):
        build_model("meco", stem_skip=True, backbone="vit_tiny_patch16_224", channels=32)
