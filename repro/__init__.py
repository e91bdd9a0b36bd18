"""lecun1989: a faithful, multi-seed reproduction of LeCun et al. (1989), "Backpropagation Applied to
Handwritten Zip Code Recognition", with an ordered ladder of modern ablations."""

__version__ = "0.1.0"
