"""Offline demo data set (real photo crops + autoencoder reconstructions) and the demo model."""
