"""Statistical engines for the model stage: each module fits one family of models and returns tidy results."""
