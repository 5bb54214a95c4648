"""seismo models: autoencoders, training, artifacts and evaluation."""
