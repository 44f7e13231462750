"""Pretrained encoders behind one interface, registered by name; torch loads only on first use."""

from mmfs.encoders.registry import create, from_provenance, get_cached, names, register, resolve

__all__ = ["create", "from_provenance", "get_cached", "names", "register", "resolve"]
