"""What the notebooks show and need: figures, Google Colab's folders and uploads, a trained
generator for a notebook that needs one."""
