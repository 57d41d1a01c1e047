"""deepscores: written music in, pixel-exact computer-vision ground truth out."""

__version__ = "0.1.0"

import logging as _logging

# A library does not print: applications (our CLI included) decide where log records go.
_logging.getLogger("deepscores").addHandler(_logging.NullHandler())
