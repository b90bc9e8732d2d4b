"""The data pipeline: the data-set table, download and checksums, IDX files, the decoded cache, batches.

``datasets`` is the table of known data sets (mirrors, files, checksums);
``download`` fetches and verifies them into the cache; ``idx`` reads and
writes IDX files safely; ``decoded`` keeps a verified ``.npy`` beside each
``.gz`` so a second load is a memory map; ``loading`` puts it together as a
``Dataset`` and gathers minibatches; ``augment`` is the table of random
distortions applied to training batches.

May import: numpy, requests, ``mlptrain.errors``, ``mlptrain.fsutil``. Not the maths (``nn``).
"""
