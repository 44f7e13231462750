"""Text: decoding and cleaning, tokens by backend, language, PII, chunking, captions, vocabulary."""
