"""mmfs: a multimodal data pipeline and feature store (text, images, video, audio into LanceDB)."""

__version__ = "0.1.0"
