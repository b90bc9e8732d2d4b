"""The data pipeline: known data sets and their download, the formats of a user's own data, preparation, caches,
batches.

``datasets`` is the table of known data sets (mirrors, files, checksums);
``download`` fetches and verifies them into the cache; ``idx`` reads and
writes IDX files safely. ``formats`` is the table of what ``--dataset PATH``
accepts (``idxdir``, ``csvfile``, ``npzfile``, ``parquetfile``: Hugging Face's
Parquet, ``folders``: class folders of images), each read into the ``parts``
every format shares; ``images`` reads image files and ``prepare`` makes them
look like MNIST's (``predict`` uses both too), ``prepared`` does it on every
core into the cache. ``cache`` is
where the data directory is and the cache of decoded and prepared arrays in
it (``decoded``: IDX files). ``loading`` puts it together as a ``Dataset``
and gathers minibatches; ``augment`` is the table of random distortions
applied to training batches.

May import: numpy, requests, Pillow, pyarrow (lazily, for Parquet), ``mlptrain.errors``, ``mlptrain.fsutil``,
``mlptrain.threads``. Not the maths (``nn``).
"""
