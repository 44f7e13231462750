"""Video: frame sampling and decoders, shots, optical flow and its statistics, action pooling."""
