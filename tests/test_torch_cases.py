"""tb_gradflow.torch against autograd's truth, on cases built from public PyTorch reports.

Each case says where it comes from. Every parameter's state in the report must equal
`torch.autograd.grad(loss, params, allow_unused=True)` (tests/torch_truth.py); each cut must have
the right cause, the user's line and the parameters it starves.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tb_gradflow.torch as gt
from support.torch_truth import line_of, truth
from tb_gradflow import vocabulary as V

HERE = __file__


def check(loss_fn, args, named, seed=0, parameters=None):
    """The report of loss_fn(*args), after asserting its states equal autograd's."""
    expected = truth(loss_fn, args, named, seed)
    torch.manual_seed(seed)
    report = gt.analyze(loss_fn, *args, parameters=parameters)
    assert {n: v.state for n, v in report.variables.items()} == expected
    return report


def named(**modules):
    """Each module's named_parameters(), qualified by the name it is passed under."""
    return [(f"{attr}.{n}", p) for attr, m in modules.items() for n, p in m.named_parameters()]


def the_cut(report, cause):
    cuts = [c for c in report.cut_points if c.cause == cause]
    assert len(cuts) == 1, report.cut_points
    return cuts[0]


def mlp(*sizes):
    layers = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


# --- detach -------------------------------------------------------------------------------


def test_detach_codebook_only_inside_detach():
    """showlab/Olaf-World#8: the codebook appears only inside .detach() in the codebook loss,
    so it never gets a gradient while the reconstruction loss still falls.
    """
    torch.manual_seed(0)
    encoder, codebook = nn.Linear(6, 4), nn.Embedding(8, 4)
    x = torch.randn(5, 6)

    def loss_fn(x):
        z_e = encoder(x)
        idx = torch.cdist(z_e, codebook.weight).argmin(1)
        z = codebook(idx)
        z_q = z_e + (z - z_e).detach()  # CUT-detach
        return F.mse_loss(z_q, z_e.detach()) + z_q.pow(2).mean()

    report = check(
        loss_fn,
        (x,),
        named(encoder=encoder, codebook=codebook),
    )
    cut = [c for c in report.cut_points if c.cause == "detach" and c.starved_variables]
    assert len(cut) == 1 and cut[0].source.endswith(line_of(HERE, "CUT-detach"))
    assert cut[0].starved_variables == ("codebook.weight",)
    assert report.variables["encoder.weight"].state == "flowing"


def test_tensor_data_cuts():
    """facebookresearch/inversecooking#3: `torch.stack(logits, 1).data` left the decoder's
    logits without history, so its layers got no gradient.
    """
    torch.manual_seed(0)
    decoder = mlp(4, 8, 5)
    x, y = torch.randn(6, 4), torch.randint(0, 5, (6,))

    def loss_fn(x, y):
        logits = torch.stack([decoder(x), decoder(x * 2)], 1).data  # CUT-data
        logits.requires_grad_(True)
        return F.cross_entropy(logits.mean(1), y)

    named = list(decoder.named_parameters())
    report = check(loss_fn, (x, y), named)
    cut = the_cut(report, "detach")
    assert cut.op_type == "data" and cut.source.endswith(line_of(HERE, "CUT-data"))
    assert set(cut.starved_variables) == {n for n, _ in named}


def test_no_grad_block_inside_loss():
    """pytorch/pytorch#43259 (comment of 2022-06-15): `with torch.no_grad()` inside a callable
    that computes part of the loss left parameters unused.
    """
    torch.manual_seed(0)
    backbone, head = nn.Linear(5, 5), nn.Linear(5, 1)
    x = torch.randn(4, 5)

    def loss_fn(x):
        with torch.no_grad():
            feats = backbone(x)  # CUT-nograd
        return head(feats).pow(2).mean()

    report = check(
        loss_fn,
        (x,),
        named(backbone=backbone, head=head),
    )
    cut = the_cut(report, "detach")
    assert "no_grad" in cut.detail and cut.source.endswith(line_of(HERE, "CUT-nograd"))
    assert set(cut.starved_variables) == {"backbone.weight", "backbone.bias"}


def test_inference_mode_region():
    """pytorch/pytorch#57776 (RFC: a tool to find why parameters get no gradient): a feature
    extractor run under torch.inference_mode() inside the loss.
    """
    torch.manual_seed(0)
    extractor, head = nn.Linear(3, 3), nn.Linear(3, 1)
    x = torch.randn(4, 3)

    def loss_fn(x):
        with torch.inference_mode():
            feats = extractor(x)  # CUT-inference
        return head(feats.clone()).sum()

    report = gt.analyze(loss_fn, x)
    cut = the_cut(report, "detach")
    assert "inference_mode" in cut.detail and cut.source.endswith(line_of(HERE, "CUT-inference"))
    assert set(cut.starved_variables) == {"extractor.weight", "extractor.bias"}
    assert report.variables["head.weight"].state == "flowing"


# --- numpy / Python round trips -------------------------------------------------------------


def test_tolist_round_trip():
    """pytorch/pytorch#7335 and kevinzakka/recurrent-visual-attention#4: values that went
    through NumPy or Python lists come back as new tensors with no history.
    """
    torch.manual_seed(0)
    glimpse, core = nn.Linear(4, 4), nn.Linear(4, 2)
    x = torch.randn(3, 4)

    def loss_fn(x):
        g = glimpse(x)
        loc = torch.tensor(g.tolist())  # CUT-tolist
        return core(loc).pow(2).mean()

    report = check(
        loss_fn,
        (x,),
        named(glimpse=glimpse, core=core),
    )
    cut = the_cut(report, "numpy")
    assert cut.op_type == "tolist" and cut.source.endswith(line_of(HERE, "CUT-tolist"))
    assert set(cut.starved_variables) == {"glimpse.weight", "glimpse.bias"}


def test_item_round_trip():
    """delira-dev/delira#40: a value taken out with .item() and put back as a tensor."""
    torch.manual_seed(0)
    scale_net, net = nn.Linear(2, 1), nn.Linear(2, 1)
    x = torch.randn(5, 2)

    def loss_fn(x):
        s = scale_net(x).mean().item()  # CUT-item
        return (net(x) * torch.tensor(s)).pow(2).mean()

    report = check(
        loss_fn,
        (x,),
        named(scale_net=scale_net, net=net),
    )
    cut = the_cut(report, "numpy")
    assert cut.source.endswith(line_of(HERE, "CUT-item"))
    assert set(cut.starved_variables) == {"scale_net.weight", "scale_net.bias"}


# --- integer casts and non-differentiable ops ------------------------------------------------


def test_long_cast():
    """pytorch/pytorch#91431: "The float type is converted to the long type, and the gradient
    information is lost".
    """
    torch.manual_seed(0)
    counter = nn.Linear(4, 1)
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,)).float()

    def loss_fn(x, y):
        counts = counter(x).squeeze(1).clamp(min=0).long()  # CUT-long
        return F.mse_loss(counts.float(), y)

    report = check(loss_fn, (x, y), list(counter.named_parameters()))
    cut = the_cut(report, "integer_cast")
    assert (
        cut.op_type == "long"
        and "int64" in cut.detail
        and cut.source.endswith(line_of(HERE, "CUT-long"))
    )
    assert set(cut.starved_variables) == {"weight", "bias"}


def test_gan_generator_through_argmax():
    """keras-team/keras#9837 and ai.stackexchange 36940: a text GAN whose generator picks tokens
    with argmax; the discriminator trains, the generator gets nothing.
    """
    torch.manual_seed(0)
    gen, disc = mlp(3, 8, 6), mlp(6, 8, 1)
    z = torch.randn(4, 3)

    def generator_loss(z):
        tokens = gen(z).argmax(-1)  # CUT-gan
        fake = F.one_hot(tokens, 6).float()
        return F.binary_cross_entropy_with_logits(disc(fake), torch.ones(4, 1))

    params = named(gen=gen, disc=disc)
    report = check(generator_loss, (z,), params)
    cut = the_cut(report, "non_differentiable")
    assert cut.op_type == "argmax" and cut.source.endswith(line_of(HERE, "CUT-gan"))
    assert set(cut.starved_variables) == {n for n, _ in params if n.startswith("gen.")}
    ops = {o.name for o in report.ops}
    assert "gen.0/linear" in ops and "disc.0/linear" in ops and "loss/argmax" in ops
    # the loss depends on the argmax through the discriminator: the gradient reaches the cut
    argmax = next(o for o in report.ops if o.name == "loss/argmax")
    assert argmax.state == "flowing" and argmax.norm is None and not argmax.measured
    assert "the gradient from the loss reaches it" in str(report)


def test_vq_vae_without_straight_through():
    """zalandoresearch/pytorch-vq-vae#6 and Biohub/esm#38: without `z_e + (z_q - z_e).detach()`
    the argmin between encoder and codebook starves the encoder.
    """
    torch.manual_seed(0)
    encoder, codebook, decoder = nn.Linear(8, 4), nn.Embedding(16, 4), nn.Linear(4, 8)
    x = torch.randn(10, 8)

    def loss_fn(x):
        z_e = encoder(x)
        idx = torch.cdist(z_e, codebook.weight).argmin(1)  # CUT-vq
        return F.mse_loss(decoder(codebook(idx)), x)

    report = check(loss_fn, (x,), named(encoder=encoder, codebook=codebook, decoder=decoder))
    cut = the_cut(report, "non_differentiable")
    assert cut.op_type == "argmin" and cut.source.endswith(line_of(HERE, "CUT-vq"))
    assert set(cut.starved_variables) == {"encoder.weight", "encoder.bias"}
    assert report.variables["codebook.weight"].state == "flowing"


def test_multinomial_sample_without_log_prob():
    """pytorch/pytorch#40983: parameters stay unchanged and their gradients are None when the
    chosen actions, not their log-probabilities, enter the loss.
    """
    torch.manual_seed(0)
    policy = mlp(4, 8, 3)
    s = torch.randn(5, 4)

    def loss_fn(s):
        probs = policy(s).softmax(-1)
        actions = torch.multinomial(probs, 1)  # CUT-multinomial
        return -(actions.float() * 1.5).mean()

    report = check(loss_fn, (s,), list(policy.named_parameters()))
    cut = the_cut(report, "non_differentiable")
    assert cut.op_type == "multinomial" and cut.source.endswith(line_of(HERE, "CUT-multinomial"))


def test_comparison_mask_starves_nothing():
    """tinygrad/tinygrad#12409 and pytorch/pytorch#52248: a comparison builds a mask; it has no
    gradient, but the masked value still carries one, so nothing starves.
    """
    torch.manual_seed(0)
    net = nn.Linear(3, 3)
    x = torch.randn(4, 3)

    def loss_fn(x):
        h = net(x)
        return (h * (h > 0).float()).sum()

    report = check(loss_fn, (x,), list(net.named_parameters()))
    cut = the_cut(report, "non_differentiable")
    assert cut.op_type == "gt" and cut.starved_variables == ()
    assert "starves nothing" in str(report)


# --- custom Functions -------------------------------------------------------------------------


class _ScaleNoWeightGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(w)
        return x * w

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return g * w, None  # the weight's gradient forgotten


def test_custom_function_returns_none():
    """pytorch/pytorch#41490: a custom backward that returns None leaves the input's gradient
    None (not zeros) since torch 1.7; here the weight's is forgotten.
    """
    torch.manual_seed(0)
    lin = nn.Linear(3, 3)
    w = nn.Parameter(torch.randn(3))
    x = torch.randn(2, 3)

    def loss_fn(x):
        return _ScaleNoWeightGrad.apply(lin(x), w).sum()  # CUT-custom

    report = check(
        loss_fn,
        (x,),
        [("weight", lin.weight), ("bias", lin.bias), ("param_2", w)],
        parameters=[("weight", lin.weight), ("bias", lin.bias), ("param_2", w)],
    )
    cut = the_cut(report, "custom_gradient")
    assert cut.op_type == "_ScaleNoWeightGrad" and cut.source.endswith(line_of(HERE, "CUT-custom"))
    assert cut.starved_variables == ("param_2",)


# --- zero, nonfinite, presence -------------------------------------------------------------


def test_round_gives_zero_with_reason():
    """tinygrad/tinygrad#15925 ("torch gives 0 for both trunc and round") and apache/mxnet#9040:
    rounding passes back zeros, so the state is zero, not none, and the story says why.
    """
    torch.manual_seed(0)
    quant = nn.Linear(3, 3)
    x = torch.randn(4, 3)

    def loss_fn(x):
        return torch.round(quant(x) * 4).pow(2).mean()  # ZERO-round

    report = check(loss_fn, (x,), list(quant.named_parameters()))
    assert report.variables["weight"].state == "zero" and not report.cut_points
    text = str(report)
    assert (
        "round 'loss/round'" in text
        and line_of(HERE, "ZERO-round") in text
        and "derivative is 0" in text
    )


def test_where_nan_from_branch_not_taken():
    """pytorch/pytorch#36923 and #52248: torch.where passes NaN back from the branch it did not
    select (sqrt of negatives).
    """
    torch.manual_seed(0)
    net = nn.Linear(3, 4)
    x = torch.randn(6, 3)

    def loss_fn(x):
        h = net(x) - 10.0
        return torch.where(h > 0, torch.sqrt(h), h).sum()  # NAN-sqrt

    report = check(loss_fn, (x,), list(net.named_parameters()))
    assert report.variables["weight"].state == "nonfinite"
    # the story names where the NaN starts (sqrt's backward), not only the variables it reaches
    text = str(report)
    origin = text.split("turns NaN or Inf in the backward of ", 1)[1].split("\n", 1)[0]
    assert origin.startswith("sqrt 'loss/sqrt' at ") and line_of(HERE, "NAN-sqrt") in origin
    assert "'loss/where'" not in origin.split(": the gradient of its output", 1)[0]
    # the where that drops sqrt's NaN is a mask by design: told as one, without the dead-ReLU hint
    assert "torch.where mask passes back under" in text and V.DEAD_GATE_HINT not in text


def test_dead_relus_presence():
    """keras-team/keras#7057 (dead ReLU detector) and lucidrains/deep-cross-attention#2: units
    that never activate pass no gradient back; the first layer gets all zeros.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        model[0].bias.fill_(-100.0)
    x = torch.randn(8, 4)

    def loss_fn(x):
        return model(x).pow(2).mean()

    report = check(loss_fn, (x,), list(model.named_parameters()))
    relu = next(o for o in report.ops if o.name == "1/relu")
    assert relu.presence_at_input and relu.presence == 0.0
    assert report.variables["0.weight"].state == "zero"
    assert (relu.units, relu.dead_units) == (16, 16)  # counted in units, told as such
    assert "1/relu (layer 0): 16 of 16 units dead" in str(report)


def test_a_relu_before_a_pooler_is_not_blamed_for_the_positions_the_pooler_drops():
    """A ReLU feed-forward read at the first of twelve positions only: it passes back about half
    of what arrives (one position in twelve), not 4 % of its elements, and is not called dead."""
    torch.manual_seed(0)
    model = nn.ModuleDict(
        {"ffn": nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8)), "head": nn.Linear(8, 2)}
    )
    ffn, head = model["ffn"], model["head"]
    tokens = torch.randn(8, 12, 8)

    def loss_fn(t):
        return model["head"](model["ffn"](t)[:, 0, :]).pow(2).mean()

    report = check(loss_fn, (tokens,), list(model.named_parameters()))
    relu = next(o for o in report.ops if o.type == "relu")
    z = ffn[0](tokens).detach().requires_grad_()
    h = torch.relu(z)
    h.retain_grad()
    head(ffn[2](h)[:, 0, :]).pow(2).mean().backward()
    passed, arrived = int(torch.count_nonzero(z.grad)), int(torch.count_nonzero(h.grad))
    assert passed / z.numel() < 0.1 and 0.3 < passed / arrived < 0.8
    assert relu.presence_at_input and abs(relu.presence - passed / arrived) < 1 / 254
    assert "dead ReLUs" not in str(report)


# --- frozen, unused, naming ---------------------------------------------------------------


class _Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 3)
        self.aux_head = nn.Linear(8, 2)  # declared, never called

    def forward(self, x):
        return self.head(self.encoder(x))


def test_frozen_layers_and_unused_head():
    """nttcslab/byol-a#7 (requires_grad=False parameters) and ultralytics/ultralytics#5821,
    pytorch/pytorch#57473 (DDP's "parameters that were not used in producing loss").
    """
    torch.manual_seed(0)
    model = _Classifier()
    for p in model.encoder[0].parameters():
        p.requires_grad_(False)
    x, y = torch.randn(5, 4), torch.randint(0, 3, (5,))

    def loss_fn(x, y):
        return F.cross_entropy(model(x), y)

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    report = check(loss_fn, (x, y), trainable)
    assert report.frozen_variables == ("encoder.0.weight", "encoder.0.bias")
    assert (
        report.starved_variables == ["aux_head.weight", "aux_head.bias"] and not report.cut_points
    )
    text = str(report)
    assert "not used by the loss at all" in text and "frozen" in text
    assert {"encoder.0/linear", "encoder.2/linear", "head/linear"} <= {o.name for o in report.ops}


def test_detached_target_network_names_qualified():
    """pytorch/pytorch#57776 (the RFC's case of parameters left out of the loss on purpose) with
    a DQN: the target network's output is detached; both networks share layer names, so each is
    qualified by the attribute the loss reaches it through.
    """
    torch.manual_seed(0)
    online, target = mlp(4, 8, 2), mlp(4, 8, 2)
    s, a, r, s2 = torch.randn(6, 4), torch.randint(0, 2, (6,)), torch.randn(6), torch.randn(6, 4)

    def td_loss(s, a, r, s2):
        q = online(s).gather(1, a[:, None]).squeeze(1)
        best = target(s2).max(1).values.detach()  # CUT-target
        return F.smooth_l1_loss(q, r + 0.9 * best)

    params = named(online=online, target=target)
    report = check(td_loss, (s, a, r, s2), params)
    cut = the_cut(report, "detach")
    assert cut.source.endswith(line_of(HERE, "CUT-target"))
    assert set(cut.starved_variables) == {n for n, _ in params if n.startswith("target.")}
    assert "for a target network" in str(report)  # the hint: nothing to fix if meant


def test_lstm_argmax_feedback():
    """keras-team/keras#9837: a decoder that feeds its argmax token back as the next input; the
    argmax blocks that path, the logits still train every weight.
    """
    torch.manual_seed(0)
    emb, cell, out = nn.Embedding(7, 5), nn.LSTMCell(5, 6), nn.Linear(6, 7)
    targets = torch.randint(0, 7, (3, 4))

    def decode_loss(targets):
        tok = torch.zeros(3, dtype=torch.long)
        h = c = torch.zeros(3, 6)
        loss = torch.zeros(())
        for t in range(4):
            h, c = cell(emb(tok), (h, c))
            logits = out(h)
            loss = loss + F.cross_entropy(logits, targets[:, t])
            tok = logits.argmax(-1)  # CUT-feedback
        return loss

    # emb and out both hold "weight": qualified; the cell's names collide with nothing.
    named = [
        ("emb.weight", emb.weight),
        *cell.named_parameters(),
        *((f"out.{n}", p) for n, p in out.named_parameters()),
    ]
    report = check(decode_loss, (targets,), named)
    cuts = [c for c in report.cut_points if c.cause == "non_differentiable"]
    assert len(cuts) == 3 and all(not c.starved_variables for c in cuts)
    assert all(c.source.endswith(line_of(HERE, "CUT-feedback")) for c in cuts)


def test_requires_grad_set_on_cut_loss():
    """ronghuaiyang/arcface-pytorch#56: `loss.requires_grad = True` silenced "element 0 of
    tensors does not require grad", and then the loss never declined. The cut is still shown.
    """
    torch.manual_seed(0)
    model = mlp(4, 8, 3)
    x, y = torch.randn(5, 4), torch.randint(0, 3, (5,)).float()

    def loss_fn(x, y):
        pred = model(x).argmax(1).float()  # CUT-silenced
        loss = F.mse_loss(pred, y)
        loss.requires_grad = True
        return loss

    named = list(model.named_parameters())
    report = check(loss_fn, (x, y), named)
    cut = the_cut(report, "non_differentiable")
    assert cut.source.endswith(line_of(HERE, "CUT-silenced"))
    assert set(cut.starved_variables) == {n for n, _ in named}


# --- ordinary models: every parameter as autograd says -----------------------------------------


class _SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.rnn = nn.GRU(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        f = self.features(x).flatten(2).transpose(1, 2)
        a, _ = self.attn(f, f, f)
        h, _ = self.rnn(a)
        return self.fc(h[:, -1])


@pytest.mark.parametrize("train", [True, False])
def test_ordinary_cnn_attention_gru(train):
    """An ordinary model (BatchNorm, MultiheadAttention, GRU), in train and eval mode."""
    torch.manual_seed(0)
    model = _SmallCnn().train(train)
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 4, (2,))

    def loss_fn(x, y):
        return F.cross_entropy(model(x), y)

    report = check(loss_fn, (x, y), list(model.named_parameters()))
    assert not report.starved_variables and not report.starving_cut_points
    assert any(o.name.startswith("features.0/") for o in report.ops)


class _Trainer:
    """A training class whose loss is a bound method reading self.model: the usual Lightning-like
    layout (parameters found through `self`)."""

    def __init__(self):
        self.model = nn.Sequential(
            nn.Embedding(20, 8), nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        )
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 4))

    def loss(self, tokens, y):
        h, _ = self.lstm(self.model(tokens))
        z = self.head(h[:, -1])
        z += 1.0  # an in-place write on the loss path
        return {"loss": F.cross_entropy(z, y), "logits": z}


def test_ordinary_bound_method_transformer_lstm_inplace():
    """An ordinary model reached through `self` (embedding, TransformerEncoderLayer, LSTM, an
    in-place ReLU and an in-place add), the loss returned in a dict."""
    torch.manual_seed(0)
    trainer = _Trainer()
    tokens, y = torch.randint(0, 20, (3, 5)), torch.randint(0, 4, (3,))
    # model and head both hold "0.weight": qualified by their attribute; the LSTM's names are
    # unique, so they stay named_parameters() names.
    named = [
        *(("model." + n, p) for n, p in trainer.model.named_parameters()),
        *trainer.lstm.named_parameters(),
        *(("head." + n, p) for n, p in trainer.head.named_parameters()),
    ]
    expected = truth(lambda t, y: trainer.loss(t, y)["loss"], (tokens, y), named)
    report = gt.analyze(trainer.loss, tokens, y)
    assert {n: v.state for n, v in report.variables.items()} == expected
    assert set(expected.values()) == {"flowing"} and not report.starving_cut_points
    ops = {o.name for o in report.ops}
    assert {"model.0/embedding", "lstm/lstm", "head.0/linear", "head.1/relu", "loss/add_"} <= ops, (
        ops
    )


def test_detach_numpy_from_numpy_round_trip():
    """kevinzakka/recurrent-visual-attention#4 ("where you convert torch.tensor to numpy ...
    gradient backpropagation broken") and google-research/fast-soft-sort#20 (`.numpy()` refuses a
    tensor that requires grad, so users add `.detach()`): the value comes back through
    torch.from_numpy, which no recording sees; the round trip is still named."""
    import numpy as np

    torch.manual_seed(0)
    glimpse, core = nn.Linear(4, 4), nn.Linear(4, 1)
    x = torch.randn(3, 4)

    def loss_fn(x):
        g = glimpse(x)
        arr = g.detach().cpu().numpy()  # CUT-roundtrip
        return core(torch.from_numpy(np.tanh(arr))).pow(2).mean()

    report = check(
        loss_fn,
        (x,),
        named(glimpse=glimpse, core=core),
    )
    cut = the_cut(report, "numpy")
    assert cut.op_type == "detach" and cut.source.endswith(line_of(HERE, "CUT-roundtrip"))
    assert set(cut.starved_variables) == {"glimpse.weight", "glimpse.bias"}
    assert "not used by the loss at all" not in str(report)


def test_topk_indices_route_experts():
    """LINs-lab/DynMoE#6: "learnable parameters I added before the top-k operation failed to
    update" when a router's top-k indices, not its weights, pick the experts."""
    torch.manual_seed(0)
    router, experts = nn.Linear(4, 3), nn.Embedding(3, 4)
    x = torch.randn(5, 4)

    def loss_fn(x):
        picked = router(x).topk(2, dim=-1).indices  # CUT-topk
        return (experts(picked).sum(1) * x).pow(2).mean()

    report = check(loss_fn, (x,), named(router=router, experts=experts))
    cut = the_cut(report, "non_differentiable")
    assert cut.op_type == "topk" and "indices" in cut.detail
    assert cut.source.endswith(line_of(HERE, "CUT-topk"))
    assert set(cut.starved_variables) == {"router.weight", "router.bias"}


_helper_model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))


def _helper_forward(x):
    return _helper_model(x).argmax(0).float()  # CUT-helper


def test_model_found_through_a_helper_and_a_partial():
    """The loss calls a helper of the user's that reads a global model (as in
    ronghuaiyang/arcface-pytorch#56's train.py), and is passed as a functools.partial."""
    import functools

    def loss_fn(x, scale):
        return (_helper_forward(x) * scale).sum()

    x = torch.randn(5, 3)
    report = check(
        functools.partial(loss_fn, scale=2.0), (x,), list(_helper_model.named_parameters())
    )
    cut = the_cut(report, "non_differentiable")
    assert cut.source.endswith(line_of(HERE, "CUT-helper"))
    assert set(cut.starved_variables) == {n for n, _ in _helper_model.named_parameters()}


def test_embedding_rows_not_looked_up_are_normal():
    """An embedding's rows the batch does not look up get no gradient: told as normal (as the
    TensorFlow side tells IndexedSlices), not as a thin gradient."""
    torch.manual_seed(0)
    emb, head = nn.Embedding(1000, 8), nn.Linear(8, 1)
    tokens = torch.randint(0, 1000, (4, 3))

    def loss_fn(tokens):
        return head(emb(tokens).mean(1)).sum()

    report = check(loss_fn, (tokens,), named(emb=emb, head=head))
    table = report.variables["emb.weight"]
    assert table.sparse_gradient and table.presence < 0.05
    text = str(report)
    assert "rows" in text and "normal for an embedding" in text


def test_a_where_condition_needs_no_fix_and_a_hard_mask_keeps_its_hint():
    """A comparison that only picks torch.where's branch loses nothing (the TensorFlow side's
    rule, capture/cuts.py); the same comparison cast and multiplied is a hard mask."""
    torch.manual_seed(0)
    layer = nn.Linear(4, 3)
    x = torch.randn(5, 4)

    def leaky(x):
        h = layer(x)
        return torch.where(h > 0, h, 0.1 * h).sum()

    def masked(x):
        h = layer(x)
        return (h * (h > 0).float()).sum()

    for loss_fn, detail, hint in (
        (leaky, V.WHERE_CONDITION_DETAIL, V.WHERE_CONDITION_HINT),
        (masked, None, V.HINTS[V.NON_DIFFERENTIABLE]),
    ):
        report = check(loss_fn, (x,), list(layer.named_parameters()))
        [cut] = report.cut_points
        assert (cut.op_type, cut.starved_variables, cut.hint) == ("gt", (), hint)
        if detail is None:
            assert cut.detail != V.WHERE_CONDITION_DETAIL
        else:
            assert cut.detail == detail


def test_an_op_written_over_in_place_keeps_its_own_gradient():
    """torchvision's blocks end in ReLU(inplace=True): the BatchNorm's output is overwritten,
    so its gradient cannot be asked for through the tensor. It is measured where the write
    passes it back: the report equals that of the same model with out-of-place ReLUs, and an
    in-place add on a Linear's output tells that Linear as an out-of-place add does."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 8),
        nn.ReLU(), nn.Linear(8, 1),
    )
    x = torch.randn(4, 3, 8, 8)

    def loss_fn(x):
        return model(x).pow(2).mean()

    def shifted_in_place(x):
        h = model[4](model[3](model[2](model[1](model[0](x)))))
        h += 0.5
        return model[6](model[5](h)).pow(2).mean()

    def shifted(x):
        h = model[4](model[3](model[2](model[1](model[0](x)))))
        return model[6](model[5](h + 0.5)).pow(2).mean()

    def told(loss):
        report = check(loss, (x,), list(model.named_parameters()))
        return {o.name: (o.state, o.measured, o.norm, o.presence, o.dead_units) for o in report.ops}

    def same(a, b, names):
        for name in names:
            assert a[name][:2] == b[name][:2], name
            assert a[name][2] == pytest.approx(b[name][2], rel=1e-5), name
            assert a[name][3:] == b[name][3:], name

    out_of_place = told(loss_fn)
    for relu in (model[2], model[5]):
        relu.inplace = True
    in_place = told(loss_fn)
    assert in_place.keys() == out_of_place.keys() and in_place["1/batch_norm"][:2] == ("flowing", True)
    same(in_place, out_of_place, out_of_place)
    written, added = told(shifted_in_place), told(shifted)
    assert written["4/linear"][:2] == ("flowing", True)
    same(written, added, ["0/conv2d", "1/batch_norm", "2/relu", "4/linear", "5/relu"])
