"""Research model variants kept out of the production package (see recvae.py)."""
