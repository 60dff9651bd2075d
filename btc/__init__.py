"""BTC: the Bi-directional Transformer for Chord recognition (Park et al., ISMIR 2019).

A clean implementation that loads the two published checkpoints (25 and 170 chord classes).
"""
