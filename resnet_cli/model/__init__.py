"""The network as data and code: spec (stage table, weight files and what they were trained
with) · resnet (the Keras builder, no I/O) · weights (find, download, read both HDF5 layouts) ·
head (the user's classes) · imagenet (class index, top-k) · gradcam."""
