"""Training tools that read the store: the fusion projection and the sound-event head."""
