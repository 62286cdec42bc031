"""Limits shared by the decoders and the store (no heavy imports: pages import this)."""

DEFAULT_MAX_PIXELS = 100_000_000  # decompression-bomb cap, checked from the header before decoding
