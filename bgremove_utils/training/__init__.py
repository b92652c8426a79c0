"""Training the GAN: its losses, one step (D then G), the loop with its checkpoints and health, on
CUDA, MPS or the CPU, in one process or several under torchrun."""
