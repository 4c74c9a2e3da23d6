"""Checkpoint backends (ONNX, TorchScript, PyTorch state_dict, dlib) and the backbone registry."""
