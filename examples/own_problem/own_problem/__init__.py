"""A problem of one's own, plugged into fedsim without editing it: waveform shapes from short
noisy sequences (:mod:`.data`), a small 1-D conv net (:mod:`.model`), a coordinate-wise trimmed
mean (:mod:`.strategy`) and label-smoothed classification (:mod:`.task`). The config groups in
``../conf`` name them by ``_target_``."""
