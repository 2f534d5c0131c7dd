"""The book pipeline above the core: profiles (``profiles``), the runs of a profile
(``runs``), ``make reproduce`` (``reproduce``: papermill notebooks, then the book), the
tables and figures from the runs (``results``, ``comparison``, ``metric_tables``,
``loco_results``, ``figures``), the teaching page (``walkthrough``), and the heatmap
explorers (``explore`` for the book, ``explore_widgets`` and ``lab`` for JupyterLab).
The core (``multiad.config``, ``engine``, ``methods``, ``evaluate``, …) never imports it."""
