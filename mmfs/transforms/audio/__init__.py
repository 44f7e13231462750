"""Audio: decoding, spectral features per window, denoising, speech utterances and words, the sound head."""
