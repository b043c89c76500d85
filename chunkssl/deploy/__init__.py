"""Deployment outside PyTorch: ONNX export of the streaming encoder step (see :mod:`chunkssl.deploy.onnx_export`)."""
