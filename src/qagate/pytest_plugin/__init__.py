"""The pytest front end: ``hooks`` is the module the ``qagate`` pytest11 entry point loads
(options, ini keys, markers, collection, the summary); ``settings`` turns options into one
``Settings``; ``collect`` and ``session`` collect gate files and hold the run's caches;
``fixtures`` the fixtures users request; ``workers`` and ``scheduling`` the pytest-xdist side;
``rootdir`` finds the project's folders. Imports pytest, never torch."""
