"""Learning on generated datasets (needs the ``ml`` extra: torch, torchvision): patch datasets, the model
registry, training and evaluation of the DeepScores classification baseline. Nothing outside this
package imports torch, so generating data never needs it."""
