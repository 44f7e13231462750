"""Images: decoding and thumbnails, classical features and quality flags, colour cues, face blur."""
