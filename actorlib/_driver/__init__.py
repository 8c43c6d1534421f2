"""The driver: start-up (local cluster or connect) and its options.

Import the submodules themselves (``_bootstrap``, ``_local``, ``_options``,
``_discovery``): the head imports ``_options`` without the driver's runtime.
"""
