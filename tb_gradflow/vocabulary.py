"""The fixed words of tb_gradflow: gradient states, cut causes and the fix we suggest for each.

Everything that crosses a boundary (report, event files, JSON routes, CLI) speaks these strings;
the integers are only the on-disk encoding from ``proto/gradflow.proto``.
"""
from __future__ import annotations

FLOWING = "flowing"
ZERO = "zero"
NONE = "none"
NONFINITE = "nonfinite"

# Index = the proto State value.
STATES: tuple[str, ...] = (NONE, FLOWING, ZERO, NONFINITE)
STATE_CODE: dict[str, int] = {s: i for i, s in enumerate(STATES)}

NUMPY_FUNCTION = "numpy_function"
STOP_GRADIENT = "stop_gradient"
INTEGER_CAST = "integer_cast"
NON_DIFFERENTIABLE = "non_differentiable"
CUSTOM_GRADIENT = "custom_gradient"

# Index = the proto Cause value; 0 means "not a cut".
CAUSES: tuple[str | None, ...] = (
    None,
    NUMPY_FUNCTION,
    STOP_GRADIENT,
    INTEGER_CAST,
    NON_DIFFERENTIABLE,
    CUSTOM_GRADIENT,
)
CAUSE_CODE: dict[str | None, int] = {c: i for i, c in enumerate(CAUSES)}

HINTS: dict[str, str] = {
    NUMPY_FUNCTION: "tf.numpy_function is opaque to autodiff: rewrite it with TensorFlow ops "
    "(tf.gather, tf.where, ...), or use tf.py_function, or give it a tf.custom_gradient.",
    STOP_GRADIENT: "tf.stop_gradient blocks the gradient on purpose; if that is intended "
    "(a target network, a straight-through estimator's forward path), nothing to fix.",
    INTEGER_CAST: "integer and bool tensors carry no gradient: keep the value in float, or use a "
    "straight-through estimator (x + tf.stop_gradient(tf.round(x) - x)).",
    NON_DIFFERENTIABLE: "this op has no gradient (argmax, round, comparisons, ...): use a soft "
    "version (softmax, sigmoid) or a straight-through estimator.",
    CUSTOM_GRADIENT: "the gradient function of this tf.custom_gradient returns None for an input: "
    "return a tensor (tf.zeros_like if the input really does not matter).",
}

# An all-zero gradient in a model that computes in float16 may be underflow, not a real zero.
FLOAT16_UNDERFLOW_HINT = (
    "this model computes in float16, where gradients below about 6e-8 underflow to exactly "
    "zero: scale the loss (keras.optimizers.LossScaleOptimizer; model.fit under the "
    "mixed_float16 policy does it for you), or compute the loss in float32."
)

# How a sentence names the thing that cut the gradient ("tf.numpy_function at m.py:4 ...").
CAUSE_WORDS: dict[str, str] = {
    NUMPY_FUNCTION: "tf.numpy_function",
    STOP_GRADIENT: "tf.stop_gradient",
    INTEGER_CAST: "a cast to an integer type",
    NON_DIFFERENTIABLE: "a non-differentiable op",
    CUSTOM_GRADIENT: "a tf.custom_gradient",
}

# What reaches a cut point from the loss, by the cut op's own state.
ARRIVING: dict[str, str] = {
    FLOWING: "the gradient from the loss reaches it",
    ZERO: "an all-zero gradient reaches it from the loss",
    NONFINITE: "a NaN or Inf gradient reaches it from the loss",
    # A cut point gets no gradient only when its own output cannot carry one: a cut further
    # along a chain is not named (capture/starving.py), so nothing closer can be claimed.
    NONE: "its output is an integer or bool tensor, which carries no gradient back to it",
}

# Presence: the fraction of a gradient's elements that are nonzero and finite (issue 11).
# A gating op (ReLU, clip, tf.where) whose passed-back presence is below this, while a gradient
# does arrive at its output, is called out: nine elements in ten pass nothing back. A healthy
# ReLU passes back about half.
PRESENCE_GATE_THRESHOLD = 0.10
# A variable flowing with fewer elements than this getting any gradient is called out too; for
# one whose gradient is sparse (an embedding) it is told as normal, not as a warning.
PRESENCE_VARIABLE_THRESHOLD = 0.10
# Note kinds of the story for presence.
DEAD_GATE = "dead_gate"
SPARSE_VARIABLE = "sparse_variable"
FEW_ROWS = "few_rows"
# What a gate that passes little back is, by op type.
GATE_WORDS: dict[str, str] = {
    "Relu": "dead ReLUs",
    "Relu6": "dead ReLUs",
    "ClipByValue": "clipped",
    "Minimum": "clipped",
    "Maximum": "clipped",
    "Select": "masked by tf.where",
    "SelectV2": "masked by tf.where",
    "LeakyRelu": "dead ReLUs",
    "Elu": "saturated ELUs",
}
DEAD_GATE_HINT = (
    "units that never activate pass no gradient to the layers before them: check the layer's "
    "bias and input scale, lower the learning rate, or use an activation that leaks (LeakyReLU, "
    "GELU); for a clip, check the range against the values it sees."
)
FEW_ROWS_NORMAL = (
    "normal for an embedding or a gather: rows that the batch does not look up get no gradient"
)


# ---- Issue 16: what a report leaves out on purpose, and a loss that reads nothing ----
INTEGER_VARIABLE = "integer_variable"
CAUSES += (INTEGER_VARIABLE,)
CAUSE_CODE[INTEGER_VARIABLE] = 6
assert CAUSES[CAUSE_CODE[INTEGER_VARIABLE]] == INTEGER_VARIABLE  # the proto's Cause value
HINTS[INTEGER_VARIABLE] = (
    "an integer variable never gets a gradient, whatever the loss does with it: make it float "
    "(add_weight(dtype=\"float32\")) if it should learn, or not trainable (trainable=False) if "
    "it is a counter or a lookup table."
)
CAUSE_WORDS[INTEGER_VARIABLE] = "an integer variable"
# A cut read of an integer variable: "the variable holds int32: an integer ...".
INTEGER_VARIABLE_DETAIL = "the variable holds {dtypes}: an integer variable never gets a gradient"
# tf.nn.moments (batch and layer normalization) takes the variance around a stopped mean:
# d/dm mean((x - m)^2) = -2 mean(x - m), zero at m = mean(x), so that StopGradient loses nothing.
MOMENTS_DETAIL = "tf.nn.moments' own, on the mean its variance is taken around"
MOMENTS_HINT = (
    "none needed: batch and layer normalization take the variance around the batch mean with "
    "its gradient stopped (tf.nn.moments), and that gradient is zero anyway."
)
# tf.reduce_logsumexp (TFP mixtures, contrastive and CTC losses, keras.ops.logsumexp) shifts by
# the stopped maximum and adds it back: d/dm [log sum exp(x - m) + m] = 1 - sum softmax = 0.
LOGSUMEXP_DETAIL = "tf.reduce_logsumexp's own, on the maximum it shifts by and adds back"
LOGSUMEXP_HINT = (
    "none needed: tf.reduce_logsumexp subtracts the maximum for numerical stability and adds it "
    "back, with its gradient stopped; the gradient through that shift is zero anyway."
)
# A comparison read only as a where condition (TensorFlow's sigmoid cross-entropy from logits
# and Huber, piecewise activations written by hand), starving nothing: it chooses a branch per
# element, and the gradient of the choice is zero almost everywhere anyway.
WHERE_CONDITION_DETAIL = "the condition of a where (tf.where, torch.where), choosing a branch for each element"
WHERE_CONDITION_HINT = (
    "none needed: this comparison only chooses which branch of a where (tf.where, torch.where) "
    "each element takes, as TensorFlow's sigmoid cross-entropy from logits and Huber loss do; "
    "the gradient flows through the branches."
)
# A cut whose recorded detail has a hint of its own, in place of its cause's (HINTS): the
# detail is what the capture wrote to the logdir, so every reader tells the cut alike.
DETAIL_HINTS: dict[str, str] = {
    MOMENTS_DETAIL: MOMENTS_HINT, LOGSUMEXP_DETAIL: LOGSUMEXP_HINT, WHERE_CONDITION_DETAIL: WHERE_CONDITION_HINT,
}
# Note and headline kinds of the story.
FROZEN = "frozen"
READS_NOTHING = "reads_nothing"
SUMMED_LOSS = "summed_loss"
FROZEN_NOTE = (
    "left out: they are not trained (a frozen layer or model: Keras trainable=False, "
    "torch requires_grad=False)"
)
READS_NOTHING_HEADLINE = "The loss reads no trainable variable: nothing would train"
ALL_FROZEN_HEADLINE = (
    "Every model the loss reaches is frozen (trainable=False){models}: nothing would train"
)
# Added to the headline when a model the loss reaches is entirely frozen but others train
# (distillation's teacher): "{verdict}; model `teacher` is frozen (6 frozen variables left out)".
FROZEN_MODELS_CLAUSE = "{models} {verb} frozen ({count} left out)"
# The likely causes of a loss that reads nothing, in the order they are met.
READS_NOTHING_CAUSES: tuple[str, ...] = (
    "the model was called outside the loss function (preds = model(x) before it): call it "
    "inside, so that the gradient can follow it",
    "a tensor was computed before the tape or the loss function, or converted to numpy and back",
    "every variable the loss uses is frozen (trainable=False) or was left out of variables=",
)
# What reaches a cut point, in the eager fallback, which records no op states.
ARRIVING_UNRECORDED = "what reaches it from the loss is not recorded (eager fallback)"
SUMMED_LOSS_NOTE = (
    "its sum is differentiated, as tf.GradientTape does; reduce it (tf.reduce_mean) if that is "
    "not what training uses"
)


# ---- Issue 17: dead units, and the gradient through a loop's iterations ----
# A unit (an index of a ReLU-family gate's last axis, the channel of an NHWC convolution) is
# dead at a step when the gradient its gate passes back is exactly zero there for every example
# of the batch. A layer is called out when more than this share of its units is dead. In a
# healthy layer a unit silent for a whole batch is rare (a unit active on half the examples is
# silent on all 32 of a batch with odds 2^-32), and trained ReLU networks commonly carry a
# tenth to a third of their units dead without harm; past half the layer works at under half
# its width, and the layers before it learn from under half their signal.
DEAD_UNITS_THRESHOLD = 0.5
DEAD_UNITS = "dead_units"
DEAD_UNITS_HINT = (
    "a unit whose pre-activation is negative for every example passes no gradient and stops "
    "learning: check the layer's initialisation and the learning rate (dead units often follow "
    "one large update), add normalisation before the activation, or use one that leaks "
    "(LeakyReLU, GELU)."
)
# A tf.where (Select) that passes little back is a mask: attention masks, a pooler keeping only
# the [CLS] position. Told as such, without the dead-ReLU hint.
MASK = "mask"
# A loop's gradient vanishes (explodes) through its iterations when the norm at the first
# iteration is below this fraction of the norm at the last (above its inverse).
LOOP_VANISHING_RATIO = 1e-3
LOOP_VANISHING = "loop_vanishing"
LOOP_EXPLODING = "loop_exploding"
LOOP_VANISHING_HINT = (
    "the loss's gradient does not reach the early iterations: the first time steps barely learn. "
    "A plain RNN cell can become a gated one (LSTM, GRU); a gated cell fed long sequences, with "
    "a loss on the last output only, can be given shorter sequences, a loss or attention over "
    "every output, or a bidirectional layer. Initialising the recurrent weights orthogonal helps "
    "either way."
)
LOOP_EXPLODING_HINT = (
    "the gradient grows through the iterations: clip it (optimizer clipnorm), lower the learning "
    "rate, or initialise the recurrent weights orthogonal."
)


def combined_state(states: list[str]) -> str:
    """State of an op from its outputs: a NaN anywhere wins, then any flow, then zeros."""
    for s in (NONFINITE, FLOWING, ZERO):
        if s in states:
            return s
    return NONE


# ---- PyTorch (issue 18): its own causes, hints and words -------------------------------------
DETACH = "detach"
NUMPY = "numpy"
# Proto Cause values of the torch causes (6 belongs to issue 16).
_TORCH_CAUSE_CODES: dict[int, str] = {7: DETACH, 8: NUMPY}


def _placed(causes: tuple[str | None, ...], placed: dict[int, str]) -> tuple[str | None, ...]:
    """`causes` with `placed` at their codes; a code no branch has named yet reads "not a cut"."""
    out = list(causes) + [None] * (max(placed) + 1 - len(causes))
    for code, cause in placed.items():
        out[code] = cause
    return tuple(out)


CAUSES = _placed(CAUSES, _TORCH_CAUSE_CODES)
CAUSE_CODE = {c: i for i, c in enumerate(CAUSES) if c is not None or i == 0}

HINTS.update({
    DETACH: "detach() (or a torch.no_grad() / inference_mode block) cuts the graph on purpose; "
    "if this value should train, use the tensor itself; for a target network or a "
    "straight-through estimator (x + (q - x).detach()) nothing is to fix.",
    NUMPY: "a round trip through .numpy(), .tolist() or .item() leaves autograd: the tensor made "
    "from it has no history. Compute it with torch ops on the tensor instead.",
})
CAUSE_WORDS.update({
    DETACH: "a detach() or no_grad region",
    NUMPY: "a round trip through Python/NumPy",
})
# Ops whose backward passes exactly zero (torch): their state is zero, not none; why, in words.
ZERO_GRADIENT_OPS = frozenset({"round", "floor", "ceil", "trunc", "sign"})
ZERO_GRADIENT_REASON = (
    "{op} at {source} passes back an all-zero gradient: its derivative is 0 almost everywhere "
    "(use a straight-through estimator, x + (torch.round(x) - x).detach(), to train through it)"
)
# Where a NaN or Inf gradient starts: an op whose output's gradient is finite and whose input's is
# not made it in its own backward. Both frameworks; the usual ops and the usual fix, in words.
NONFINITE_ORIGIN_REASON = (
    "the gradient turns NaN or Inf in the backward of {ops}: the gradient of its output is "
    "finite, that of its input is not. sqrt, log, pow, division, norm and acos have an infinite "
    "derivative at 0 or outside their domain, and a where/select that drops such a value keeps "
    "its NaN gradient: make the op's input safe too (where(mask, x, safe_value) before the op), "
    "or add a small epsilon"
)
NONFINITE_ORIGINS_SHOWN = 3
# Op types (lower case, TensorFlow and torch spellings) whose derivative is infinite somewhere in
# or at the edge of their domain: when several consumers of a NaN-gradient tensor are finite,
# these are the ones to name.
SINGULAR_DERIVATIVE_OPS = frozenset({
    "sqrt", "rsqrt", "log", "log1p", "log2", "log10", "pow", "div", "realdiv", "truediv",
    "true_divide", "__truediv__", "__rtruediv__", "reciprocal", "acos", "asin", "atanh",
    "norm", "linalg_vector_norm", "euclideannorm", "cdist", "lgamma", "digamma", "xlogy",
})
# Torch gating ops, for the presence notes (the TensorFlow ones are above).
GATE_WORDS.update({
    "relu": "dead ReLUs",
    "relu_": "dead ReLUs",
    "relu6": "dead ReLUs",
    "hardtanh": "clipped",
    "clamp": "clipped",
    "clip": "clipped",
    "where": "masked by torch.where",
})
