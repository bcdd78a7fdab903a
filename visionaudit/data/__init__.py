"""Layer 2, data: image sets and their layouts, decoding under a memory budget, streaming, ImageNet ids,
the 16-category mapping, fetching and provisioning the data root, fingerprints and shards."""
