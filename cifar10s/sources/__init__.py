"""Reading CIFAR-10 safely: the official download, checked tar extraction and a restricted unpickler."""
