"""Pure torch work: local training and evaluation. No SimPy, no hydra."""
