"""Training and evaluation of the denoiser: corpus, tokenizer and token arrays, masking, the training
loop, export to a shippable checkpoint, adapting an autoregressive model, and evaluation. Nothing in the
serving path (worker, sampler, cache) imports this subpackage."""
