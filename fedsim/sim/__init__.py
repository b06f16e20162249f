"""The SimPy side of fedsim: failure clocks, links, the compute-time model."""
