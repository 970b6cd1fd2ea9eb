"""Workers: claim jobs from the queue, run them through the model side, store and commit results."""
