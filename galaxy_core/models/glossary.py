"""Short explanations of the layer types the zoo uses and of how a network is trained, for the classroom."""

from __future__ import annotations

LAYER_EXPLANATIONS = {
    "InputLayer": "The image enters: height x width x channels numbers, 0-255.",
    "ImagePreprocess": (
        "Turns raw 0-255 pixels into the range the network expects (for example divides by 255). Being inside "
        "the model, a saved model needs nothing but the image."
    ),
    "Rescaling": "Multiplies every pixel by a constant (and adds an offset): a fixed change of range.",
    "Normalization": "Subtracts a per-channel mean and divides by a standard deviation learned from data.",
    "Conv2D": (
        "A convolution slides small filters (say 3x3) over the image or feature map; each filter computes a "
        "weighted sum of the pixels under it at every position, so it responds wherever its pattern appears "
        "(an edge, a blob, a spiral arm). Early layers find simple patterns, deeper ones combine them. "
        "Parameters: kernel height x width x input channels x filters, plus one bias per filter."
    ),
    "DepthwiseConv2D": (
        "A depthwise convolution filters each channel separately (one small filter per channel) instead of "
        "mixing all channels at once; followed by a 1x1 convolution that mixes them, it costs about 8x less "
        "than a full 3x3 convolution."
    ),
    "SeparableConv2D": "A depthwise convolution followed by a 1x1 pointwise convolution, in one layer.",
    "ZeroPadding2D": "Adds a border of zeros around the map so that a following strided convolution fits.",
    "MaxPooling2D": (
        "Keeps the largest value in each 2x2 window: halves the map's height and width, keeps the strongest "
        "responses, and makes the network tolerant to small shifts. No parameters."
    ),
    "AveragePooling2D": "Averages each window (2x2 here): halves the map, smoothing rather than picking peaks.",
    "GlobalAveragePooling2D": (
        "Averages each whole feature map to a single number: a 6x6x128 map becomes 128 numbers, whatever the "
        "image size. Compared with Flatten it has no position-by-position weights after it, so far fewer "
        "parameters and less overfitting."
    ),
    "Flatten": (
        "Unrolls the feature map into one long vector (6x6x128 -> 4,608 numbers), keeping every position. The "
        "dense layer after it needs a weight per position, which is where most parameters of the Tutorial "
        "model live."
    ),
    "Dense": (
        "A fully connected layer: every output is a weighted sum of all inputs plus a bias. The last one, "
        "'logits', gives one score per class."
    ),
    "Dropout": (
        "During training, sets a random fraction of its inputs to zero at every step (switched off when "
        "predicting), so the network cannot rely on any single unit: a cheap guard against overfitting."
    ),
    "BatchNormalization": (
        "Normalises each channel to zero mean and unit variance over the batch, then scales and shifts it with "
        "two learned numbers. Keeps activations in a healthy range so training is faster and steadier. It also "
        "keeps running averages (the non-trainable parameters) to use when predicting; while those averages lag "
        "behind the changing network, validation can look far worse than training (the lab's models average over "
        "about the last 10 batches, so that settles within an epoch)."
    ),
    "ReLU": "Rectified linear unit: keeps positive values and sets negative ones to zero. The non-linearity "
    "that lets stacked layers learn more than one linear map.",
    "Activation": (
        "Applies a fixed function to each value: ReLU (max(0, x)), swish, sigmoid, or softmax at the end, which "
        "turns the class scores into probabilities that sum to 1."
    ),
    "Add": (
        "Adds two feature maps element by element: the residual (skip) connection of a ResNet. The block learns "
        "only a correction to its input, and gradients flow straight through the sum."
    ),
    "Concatenate": (
        "Stacks feature maps along the channel axis: DenseNet keeps every earlier layer's features this way; "
        "Inception joins its parallel paths."
    ),
    "Multiply": "Multiplies feature maps element by element: here, channel weights from squeeze-and-excitation.",
    "Reshape": "Changes the shape of a tensor without changing its values.",
    "P4MLifting": (
        "A convolution with symmetry built in (p4m): each filter is applied in all 8 orientations of a square (four "
        "quarter turns, each with and without a mirror flip), giving 8 feature maps per filter. Turn the image and "
        "the maps turn and swap places, so what the network finds does not depend on which way the galaxy lies. "
        "Parameters: kernel height x width x input channels x filters (shared by the 8 orientations)."
    ),
    "P4MConv": (
        "A group convolution (p4m): like a convolution, but its input and output have 8 orientations per filter, "
        "and each output orientation uses the filter turned the same way, reading the input's orientations in the "
        "matching order. Each parameter is used 8 times: few parameters, 8 times the multiply-adds."
    ),
    "P4MBatchNormalization": (
        "Batch normalisation for p4m feature maps: one mean, variance, scale and shift per filter, shared by its 8 "
        "orientations, so that a turned galaxy is normalised exactly as the galaxy is."
    ),
    "OrientationPooling": (
        "Keeps the strongest of each filter's 8 orientations: after it, the features no longer depend on how the "
        "galaxy was turned or flipped, only on what it looks like."
    ),
    "Identity": "Passes its input through unchanged; it marks a named point in the network (here, for Grad-CAM).",
}

TRAINING_EXPLANATIONS = {
    "softmax": (
        "The last layer turns the class scores (logits) into probabilities: exponentiate each score, divide by "
        "their sum. The largest score becomes the predicted class."
    ),
    "loss": (
        "Cross-entropy measures how surprised the network is by the true class: minus the log of the probability "
        "it gave that class. Right and confident: near 0; wrong and confident: large. Training lowers its "
        "average over the training images."
    ),
    "optimizer": (
        "The optimizer changes every weight a little against its gradient (the direction that raises the loss). "
        "Adam keeps a running average of each weight's gradient and of its size, so every weight gets its own "
        "step size. The learning rate scales the steps: too large and training jumps around or collapses (the "
        "report's VGG16), too small and it crawls."
    ),
    "batch": (
        "Weights are updated after each batch of images (16-64 here); an epoch is one pass over the training "
        "set. Smaller batches give noisier but more frequent updates."
    ),
}


def explain_layer_types(type_names: list[str]) -> list[tuple[str, str]]:
    """(type, explanation) for each distinct known type, in the order given."""
    return [(name, LAYER_EXPLANATIONS[name]) for name in dict.fromkeys(type_names) if name in LAYER_EXPLANATIONS]
