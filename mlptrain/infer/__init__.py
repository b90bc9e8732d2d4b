"""A trained network at work outside its run directory: ``predict`` on images and arrays, ``export`` to ONNX.

``inputs`` reads image files, directories, ``.npy`` arrays and IDX files (images
prepared by ``mlptrain.data.prepare``, as the class-folder data sets are);
``predict`` runs batches through the one core
(``mlptrain.nn.network.forward``); ``onnx`` writes the same network as an ONNX
graph. It reads weights through ``mlptrain.runs.files`` and may import runs,
train, config, nn, data and the foundation; nothing below imports it.
"""
