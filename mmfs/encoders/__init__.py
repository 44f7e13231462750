"""Pretrained encoders behind one interface, registered by name; torch loads only on first use."""

from mmfs.encoders.registry import create, get_cached, names, register, resolve

__all__ = ["create", "get_cached", "names", "register", "resolve"]
